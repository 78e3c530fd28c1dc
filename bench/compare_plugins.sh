#!/usr/bin/env bash
# Render the same chain of three LADSPA plugins from ladspa-sdk (lpf 6 kHz,
# delay_5s 0.25 s at 30 % wet, amp_mono x0.7; each dual mono on stereo)
# over a 60 s loop of real recordings with rackterm and with ecasound
# (-el:), 9 rounds in turn, and print median wall times, real-time factors
# and the ratio. Also checks that the two outputs agree (largest difference).
#
#   bench/compare_plugins.sh [BUILD_DIR]     (default: build)
#
# Needs sox, ecasound and ladspa-sdk (installed here when missing). Reports,
# never asserts: the machine is shared.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
runs=9
sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
missing=()
for p in sox ecasound alsa-utils ladspa-sdk bc; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sox /usr/share/sounds/alsa/Front_*.wav /usr/share/sounds/alsa/Rear_*.wav /usr/share/sounds/alsa/Side_*.wav \
    -r 48000 -c 2 -e floating-point "$work/once.wav"
sox "$work/once.wav" -e floating-point "$work/in.wav" repeat 20 trim 0 60
cat > "$work/chain.toml" <<TOML
[session]
name = "bench"
[engine]
block = 256
[[node]]
id = "lp"
processor = "ladspa:lpf"
params = { cutoff_frequency_hz = 6000.0 }
[[node]]
id = "echo"
processor = "ladspa:delay_5s"
params = { delay_seconds = 0.25, dry_wet_balance = 0.3 }
[[node]]
id = "amp"
processor = "ladspa:amp_mono"
params = { gain = 0.7 }
TOML

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
seconds() {  # command... -> wall seconds of one run
  local s e
  s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
: > "$work/rackterm.t"; : > "$work/eca.t"
for _ in $(seq $runs); do
  seconds "$build/rackterm" render "$work/chain.toml" -i "$work/in.wav" -o "$work/rackterm.wav" >> "$work/rackterm.t"
  seconds ecasound -q -f:f32_le,2,48000 -i "$work/in.wav" -o "$work/eca.wav" \
      -el:lpf,6000 -el:delay_5s,0.25,0.3 -el:amp_mono,0.7 >> "$work/eca.t"
done
t_rackterm=$(median < "$work/rackterm.t")
t_eca=$(median < "$work/eca.t")
printf '%-10s %10s %12s\n' tool "median s" "x real time"
for t in rackterm eca; do
  v=$(eval echo \$t_$t)
  printf '%-10s %10.3f %12.1f\n' "$t" "$v" "$(echo "60 / $v" | bc -l)"
done
printf 'rackterm throughput / ecasound: %.2fx\n' "$(echo "$t_eca / $t_rackterm" | bc -l)"
diff=$(sox -m -v 1 "$work/rackterm.wav" -v -1 "$work/eca.wav" -n stats 2>&1 | awk '/Pk lev dB/ {print $4}')
printf 'largest difference between the two outputs: %s dBFS\n' "$diff"
