# bash completion for virt-qed-migrate                     -*- shell-script -*-

_virt_qed_migrate_uri ()
{
    local i
    for (( i = 1; i < ${#COMP_WORDS[@]} - 1; i++ )); do
        case "${COMP_WORDS[i]}" in
        -c|--connect) printf '%s' "${COMP_WORDS[i + 1]}"; return ;;
        --connect=*) printf '%s' "${COMP_WORDS[i]#--connect=}"; return ;;
        esac
    done
}

_virt_qed_migrate ()
{
    local cur prev words cword split uri
    _init_completion -s || return

    case "$prev" in
    --file|--inspect|-o|--output|--report)
        _filedir
        return
        ;;
    --state-dir|--trust-dir)
        _filedir -d
        return
        ;;
    --pool)
        uri=$(_virt_qed_migrate_uri)
        COMPREPLY=($(compgen -W "$(virsh ${uri:+-c "$uri"} -q \
            pool-list --all --name 2>/dev/null)" -- "$cur"))
        return
        ;;
    --domain|--rollback|--hook-worker)
        uri=$(_virt_qed_migrate_uri)
        COMPREPLY=($(compgen -W "$(virsh ${uri:+-c "$uri"} -q \
            list --all --name 2>/dev/null)" -- "$cur"))
        return
        ;;
    -c|--connect)
        COMPREPLY=($(compgen -W "qemu:///system qemu:///session" -- "$cur"))
        return
        ;;
    --compress)
        COMPREPLY=($(compgen -W "zlib zstd" -- "$cur"))
        return
        ;;
    --verify)
        COMPREPLY=($(compgen -W "map full" -- "$cur"))
        return
        ;;
    --hook)
        COMPREPLY=($(compgen -W "prepare:begin release:end migrate:begin
            restore:begin" -- "$cur"))
        return
        ;;
    --cluster-size)
        COMPREPLY=($(compgen -W "64K 128K 256K 512K 1M 2M" -- "$cur"))
        return
        ;;
    --bandwidth|--shutdown|--to)
        return
        ;;
    esac
    $split && return

    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_parse_help "$1")" -- "$cur"))
        [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
    fi
} &&
    complete -F _virt_qed_migrate virt-qed-migrate

# ex: filetype=sh
