# bash completion for rackterm (installed as share/bash-completion/completions/rackterm)
_rackterm() {
    local cur prev words cword
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    local sub=""
    local i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            check|render|run|ctl) sub="${COMP_WORDS[i]}"; break ;;
        esac
    done
    local commands="set get nudge bypass add remove reload build save load record list status wait help quit quit!"
    case "$sub" in
        "")
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--headless --help --version" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "check render run ctl" -- "$cur") $(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur"))
            fi ;;
        check)
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--build" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur"))
            fi ;;
        render)
            case "$prev" in
                -i|--input|-o|--output|--script) COMPREPLY=($(compgen -f -- "$cur")) ;;
                --block) COMPREPLY=($(compgen -W "64 128 256 512 1024" -- "$cur")) ;;
                *)
                    if [[ "$cur" == -* ]]; then
                        COMPREPLY=($(compgen -W "-i --input -o --output --block --script" -- "$cur"))
                    else
                        COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur"))
                    fi ;;
            esac ;;
        run)
            COMPREPLY=($(compgen -f -- "$cur")) ;;
        ctl)
            if [[ "$prev" == "--session" ]]; then
                local dir="${XDG_RUNTIME_DIR:-/tmp/rackterm-$(id -u)}"
                [[ -n "$XDG_RUNTIME_DIR" ]] && dir="$XDG_RUNTIME_DIR/rackterm"
                local names
                names=$(cd "$dir" 2>/dev/null && ls -- *.sock 2>/dev/null | sed 's/\.sock$//')
                COMPREPLY=($(compgen -W "$names" -- "$cur"))
            elif [[ "$prev" == "--timeout" ]]; then
                COMPREPLY=($(compgen -W "1 5 10 30 60" -- "$cur"))
            elif [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--session --timeout" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            fi ;;
    esac
}
complete -o filenames -F _rackterm rackterm
