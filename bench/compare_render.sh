#!/usr/bin/env bash
# Render the same chain (gain -3 dB, saturation, 4 kHz lowpass) over a 60 s
# loop of real recordings with rackterm, sox and ecasound, 9 rounds, and
# print median wall times, real-time factors and ratios (tools timed in
# turn, round after round).
#
#   bench/compare_render.sh [BUILD_DIR]     (default: build)
#
# Needs sox and ecasound (installed here when missing). ecasound has no
# built-in waveshaper, so its chain is gain + lowpass only: its ratio is
# generous to ecasound.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
runs=9
sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
missing=()
for p in sox ecasound alsa-utils; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# 60 s of real recordings: the alsa-utils voices, looped, 48 kHz stereo float.
sox /usr/share/sounds/alsa/Front_*.wav /usr/share/sounds/alsa/Rear_*.wav /usr/share/sounds/alsa/Side_*.wav \
    -r 48000 -c 2 -e floating-point "$work/once.wav"
sox "$work/once.wav" -e floating-point "$work/in.wav" repeat 20 trim 0 60
cat > "$work/chain.toml" <<TOML
[session]
name = "bench"
[engine]
block = 256
[[node]]
id = "gain"
processor = "gain"
params = { gain_db = -3.0 }
[[node]]
id = "drive"
processor = "saturator"
params = { drive_db = 12.0 }
[[node]]
id = "lp"
processor = "biquad"
params = { type = 0, frequency_hz = 4000.0, q = 0.7071 }
TOML

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
seconds() {  # command... -> wall seconds of one run
  local s e
  s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
# Round-robin: each round times every tool once, so drifting machine load hits all alike.
: > "$work/rackterm.t"; : > "$work/sox.t"; : > "$work/eca.t"
for _ in $(seq $runs); do
  seconds "$build/rackterm" render "$work/chain.toml" -i "$work/in.wav" -o "$work/rackterm.wav" >> "$work/rackterm.t"
  seconds sox "$work/in.wav" -e floating-point "$work/sox.wav" gain -3 overdrive 12 0 lowpass 4000 >> "$work/sox.t"
  seconds ecasound -q -f:f32_le,2,48000 -i "$work/in.wav" -o "$work/eca.wav" -ea:70.8 -efl:4000 >> "$work/eca.t"
done
t_rackterm=$(median < "$work/rackterm.t")
t_sox=$(median < "$work/sox.t")
t_eca=$(median < "$work/eca.t")

printf '%-10s %10s %12s\n' tool "median s" "x real time"
for t in rackterm sox eca; do
  v=$(eval echo \$t_$t)
  printf '%-10s %10.3f %12.1f\n' "$t" "$v" "$(echo "60 / $v" | bc -l)"
done
printf 'rackterm throughput / sox:      %.2fx\n' "$(echo "$t_sox / $t_rackterm" | bc -l)"
printf 'rackterm throughput / ecasound: %.2fx\n' "$(echo "$t_eca / $t_rackterm" | bc -l)"
