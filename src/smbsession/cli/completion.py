"""``smbsession completion bash|zsh``: shell completion generated from the parameter
declarations.

The script completes, for ``Get-SmbSession``, ``Close-SmbSession`` and ``smbsession``
(with its subcommands ``get``, ``close``, ``lab``, ``job`` and ``completion``):

- parameter names in the PowerShell spelling (``-SessionId``, aliases such as
  ``-Session``) and the GNU one (``--session-id``), matched case-insensitively as the
  commands bind them;
- the value of a parameter that follows it (``-Format J``, ``-Format:J``,
  ``--format=j``): an enum's values (``-Format``, ``-SmbInstance``, ``-Source``,
  ``-ErrorAction``), property names for ``-Property``, files for ``-SmbConf``, directories
  for ``--dir``, and for ``-CimSession`` ``localhost`` and the ``Host`` entries of
  ``~/.ssh/config`` (and of the files it ``Include``\\ s), without the wildcard patterns,
  bare or after ``ssh://[user@]``; in a list (``a,b``) the element after the last comma.

Every name and value comes from :class:`.params.Param` declarations (``GET_PARAMS``,
``CLOSE_PARAMS``, ``LAB_PARAMS``, ``JOB_PARAMS``), so the scripts cannot drift from what
the commands accept. Only this command imports this module.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .params import Param

#: Values completed by the kind of a parameter that has no ``choices``.
_KIND_OF_NAME: dict[str, str] = {
    "CimSession": "hosts",
    "SmbConf": "file",
    "Dir": "dir",
    "Property": "props",
}

SHELLS: tuple[str, ...] = ("bash", "zsh")

USAGE = """\
smbsession completion bash    print the bash completion script
smbsession completion zsh     print the zsh completion script

bash:  source <(smbsession completion bash)            (in ~/.bashrc), or
       smbsession completion bash > /etc/bash_completion.d/smbsession
zsh:   source <(smbsession completion zsh)             (in ~/.zshrc, after compinit), or
       smbsession completion zsh > "${fpath[1]}/_smbsession"
"""


@dataclass(frozen=True)
class Spelling:
    """One way to write a parameter on the command line, and what its value is."""

    word: str  #: as offered: ``-SessionId``, ``--session-id``, ``-Session``
    kind: str  #: ``switch``, ``value``, ``enum``, ``hosts``, ``file``, ``dir``, ``props``
    values: tuple[str, ...] = ()  #: an enum's choices, or the property names


def _kind(param: Param) -> tuple[str, tuple[str, ...]]:
    if param.type == "switch":
        return "switch", ()
    if param.choices:
        return "enum", param.choices
    kind = _KIND_OF_NAME.get(param.name, "value")
    if kind == "props":
        from .view import PROPERTIES

        return kind, PROPERTIES
    return kind, ()


def spellings(params: Sequence[Param]) -> list[Spelling]:
    """Every spelling of ``params``: ``-Name``, ``-Alias`` (not ``-?``, which a shell
    would expand), ``--gnu-name``, then ``--help`` and ``--version``."""
    out: list[Spelling] = []
    for param in params:
        kind, values = _kind(param)
        words = [f"-{param.name}"]
        words += [f"-{a}" for a in param.aliases if a.isalnum()]
        words.append(f"--{param.gnu}")
        for word in words:
            if all(s.word.lower() != word.lower() for s in out):
                out.append(Spelling(word, kind, values))
    for word in ("--help", "--version"):
        if all(s.word != word for s in out):
            out.append(Spelling(word, "switch"))
    return out


def _contexts() -> dict[str, tuple[tuple[str, ...], list[Spelling]]]:
    """``{context: (words that may come first, spellings)}`` for every command line the
    script completes; a context is the command and its subcommand words."""
    from .close import CLOSE_PARAMS
    from .commands import JOB_PARAMS, LAB_PARAMS
    from .get import GET_PARAMS

    get, close = spellings(GET_PARAMS), spellings(CLOSE_PARAMS)
    return {
        "Get-SmbSession": ((), get),
        "Close-SmbSession": ((), close),
        "smbsession": (("get", "close", "lab", "job", "completion", "help"),
                       spellings(())),
        "smbsession get": ((), get),
        "smbsession close": ((), close),
        "smbsession lab": (("start", "stop", "status", "clients"), spellings(())),
        "smbsession job": (("list", "wait", "receive", "remove"), spellings(())),
        "smbsession completion": (SHELLS, spellings(())),
        **{f"smbsession lab {a}": ((), spellings(LAB_PARAMS))
           for a in ("start", "stop", "status", "clients")},
        **{f"smbsession job {a}": ((), spellings(JOB_PARAMS))
           for a in ("list", "wait", "receive", "remove")},
    }


def _table(contexts: dict[str, tuple[tuple[str, ...], list[Spelling]]]) -> str:
    """The data both scripts read, one line each: ``context|sub|WORDS`` for the words that
    may follow a context, ``context|param|word|kind|v1 v2 ...`` for each spelling."""
    lines = []
    for context, (subs, words) in contexts.items():
        if subs:
            lines.append(f"{context}|sub|{' '.join(subs)}")
        lines += [f"{context}|param|{s.word}|{s.kind}|{' '.join(s.values)}" for s in words]
    return "\n".join(lines)


# The shell side, shared in spirit by both scripts: find the context (the command and
# its subcommand words), then the parameter whose value the cursor is in (-Name value,
# -Name:value, --name=value), resolve its typed name as the binder does (exact, else a
# prefix that names one parameter kind), and offer the candidates whose beginning
# matches, case-insensitively.

_BASH = r'''# bash completion for Get-SmbSession, Close-SmbSession and smbsession
# generated by `smbsession completion bash` (smbsession @VERSION@); do not edit.
# Install: source <(smbsession completion bash)   (e.g. in ~/.bashrc)

_smbsession_table='@TABLE@'

# Host names of ~/.ssh/config (and the files it includes), without wildcard patterns.
_smbsession_ssh_hosts() {
    local -a files=("$HOME/.ssh/config") seen=()
    local f key rest word inc i=0
    while (( i < ${#files[@]} )); do
        f=${files[i]}; i=$((i + 1))
        [[ -r $f && ! -d $f ]] || continue
        while read -r key rest; do
            [[ $key == *=* ]] && { rest="${key#*=} $rest"; key=${key%%=*}; }
            case ${key,,} in
                host)
                    for word in $rest; do
                        [[ $word == *[*?!]* ]] || seen+=("$word")
                    done ;;
                include)
                    for inc in $rest; do
                        [[ $inc == /* || $inc == ~* ]] || inc="$HOME/.ssh/$inc"
                        inc=${inc/#\~/$HOME}
                        for word in $inc; do files+=("$word"); done
                    done ;;
            esac
        done < "$f"
    done
    (( ${#seen[@]} )) && printf '%s\n' "${seen[@]}"
}

# _smbsession_values KIND VALUES PIECE: the values of a parameter that begin with PIECE.
_smbsession_values() {
    local kind=$1 piece=$3 pre="" v
    local -a cands
    case $kind in
        enum|props) read -ra cands <<< "$2" ;;
        hosts)
            if [[ $piece == ssh://* ]]; then
                pre=ssh://; piece=${piece#ssh://}
                [[ $piece == *@* ]] && { pre="$pre${piece%%@*}@"; piece=${piece#*@}; }
            fi
            mapfile -t cands < <(_smbsession_ssh_hosts)
            [[ -z $pre ]] && cands+=(localhost) ;;
        file) compgen -f -- "$piece"; return ;;
        dir) compgen -d -- "$piece"; return ;;
        *) return ;;
    esac
    for v in "${cands[@]}"; do
        [[ ${v,,} == "${piece,,}"* ]] && printf '%s\n' "$pre$v"
    done
}

# _smbsession_kind CONTEXT TYPED: "kind values" of the parameter TYPED names, if any.
_smbsession_kind() {
    local context=$1 typed=${2,,} ctx what word kind values found="" n=0
    while IFS='|' read -r ctx what word kind values; do
        [[ $ctx == "$context" && $what == param ]] || continue
        if [[ ${word,,} == "$typed" ]]; then printf '%s|%s\n' "$kind" "$values"; return; fi
        if [[ ${word,,} == "$typed"* && $typed == -?* ]]; then
            [[ $found == "$kind|$values" ]] || n=$((n + 1))
            found="$kind|$values"
        fi
    done <<< "$_smbsession_table"
    (( n == 1 )) && printf '%s\n' "$found"
}

_smbsession_complete() {
    local line=${COMP_LINE:0:COMP_POINT} readline_word=${2-}
    local -a words
    read -ra words <<< "$line"
    [[ $line == *[[:space:]] || ${#words[@]} -eq 0 ]] && words+=("")
    local word=${words[-1]} n=$(( ${#words[@]} - 1 ))
    local cur=$word
    local context=${words[0]##*/} i=1 ctx what subs
    local sub
    while (( i < n )); do
        sub=""
        while IFS='|' read -r ctx what subs; do
            [[ $ctx == "$context" && $what == sub ]] && sub=" $subs "
        done <<< "$_smbsession_table"
        [[ -n $sub && $sub == *" ${words[i]} "* ]] || break
        context="$context ${words[i]}"; i=$((i + 1))
    done
    local -a out=()
    local spec kind values piece prefix=""
    if [[ $cur == -*[:=]* ]]; then
        spec=$(_smbsession_kind "$context" "${cur%%[:=]*}")
        prefix=${cur%%[:=]*}; prefix=${cur:0:${#prefix}+1}; cur=${cur#*[:=]}
    elif (( n >= 1 )) && [[ ${words[n-1]} == -* ]]; then
        spec=$(_smbsession_kind "$context" "${words[n-1]}")
        [[ $spec == switch\|* ]] && spec=""
    fi
    if [[ -n $spec && $spec != switch\|* ]]; then
        kind=${spec%%|*}; values=${spec#*|}
        piece=$cur
        if [[ $kind != file && $kind != dir && $cur == *,* ]]; then
            prefix=$prefix${cur%,*},; piece=${cur##*,}
        fi
        mapfile -t out < <(_smbsession_values "$kind" "$values" "$piece")
        [[ $kind == file || $kind == dir ]] && compopt -o filenames 2>/dev/null
        out=("${out[@]/#/$prefix}")
    elif [[ $cur == -* ]]; then
        while IFS='|' read -r ctx what spec kind values; do
            [[ $ctx == "$context" && $what == param && ${spec,,} == "${cur,,}"* ]] &&
                out+=("$spec")
        done <<< "$_smbsession_table"
    elif (( n == i )); then
        while IFS='|' read -r ctx what subs; do
            [[ $ctx == "$context" && $what == sub ]] || continue
            for sub in $subs; do [[ $sub == "$cur"* ]] && out+=("$sub"); done
        done <<< "$_smbsession_table"
    fi
    # Bash replaces only the text after its last word-break character (: = @ ...), so
    # take what precedes it off every candidate.
    local lead=${word%"$readline_word"}
    COMPREPLY=()
    local c
    for c in "${out[@]}"; do
        [[ $c == "$lead"* ]] && COMPREPLY+=("${c#"$lead"}")
    done
}

complete -F _smbsession_complete Get-SmbSession Close-SmbSession smbsession
'''

_ZSH = r'''#compdef Get-SmbSession Close-SmbSession smbsession
# zsh completion for Get-SmbSession, Close-SmbSession and smbsession
# generated by `smbsession completion zsh` (smbsession @VERSION@); do not edit.
# Install: source <(smbsession completion zsh)   (in ~/.zshrc, after compinit), or save
# it as _smbsession in a directory of $fpath.

typeset -g _smbsession_table='@TABLE@'

_smbsession_ssh_hosts() {
    local -a files seen
    local f key rest word inc
    integer i=1
    files=("$HOME/.ssh/config")
    while (( i <= $#files )); do
        f=$files[i]; (( i++ ))
        [[ -r $f && ! -d $f ]] || continue
        while read -r key rest; do
            if [[ $key == *=* ]]; then rest="${key#*=} $rest"; key=${key%%=*}; fi
            case ${(L)key} in
                host)
                    for word in ${=rest}; do
                        [[ $word == *[*?!]* ]] || seen+=("$word")
                    done ;;
                include)
                    for inc in ${=rest}; do
                        [[ $inc == /* || $inc == \~* ]] || inc="$HOME/.ssh/$inc"
                        inc=${inc/#\~/$HOME}
                        files+=(${~inc}(N))
                    done ;;
            esac
        done < "$f"
    done
    print -rl -- $seen
}

_smbsession_kind() {
    local context=$1 typed=${(L)2} line ctx what word kind values found=""
    integer n=0
    local -a f
    for line in ${(f)_smbsession_table}; do
        f=("${(@s:|:)line}")
        ctx=$f[1] what=$f[2] word=$f[3] kind=$f[4] values=$f[5]
        [[ $ctx == "$context" && $what == param ]] || continue
        if [[ ${(L)word} == "$typed" ]]; then print -r -- "$kind|$values"; return; fi
        if [[ ${(L)word} == "$typed"* && $typed == -?* ]]; then
            [[ $found == "$kind|$values" ]] || (( n++ ))
            found="$kind|$values"
        fi
    done
    (( n == 1 )) && print -r -- "$found"
}

_smbsession() {
    local cur=$PREFIX context=${words[1]:t} line sub
    local -a f subs out cands
    integer i=2
    while (( i < CURRENT )); do
        subs=()
        for line in ${(f)_smbsession_table}; do
            f=("${(@s:|:)line}")
            [[ $f[1] == "$context" && $f[2] == sub ]] && subs=(${=f[3]})
        done
        (( ${subs[(Ie)$words[i]]} )) || break
        context="$context $words[i]"; (( i++ ))
    done
    local spec="" kind values piece prefix="" pre v
    if [[ $cur == -*[:=]* ]]; then
        spec=$(_smbsession_kind "$context" "${cur%%[:=]*}")
        prefix=${cur%%[:=]*}; prefix+=${cur[$#prefix+1]}; cur=${cur#*[:=]}
    elif (( CURRENT > i )) && [[ $words[CURRENT-1] == -* ]]; then
        spec=$(_smbsession_kind "$context" "$words[CURRENT-1]")
        [[ $spec == switch\|* ]] && spec=""
    fi
    if [[ -n $spec && $spec != switch\|* ]]; then
        kind=${spec%%|*} values=${spec#*|}
        case $kind in
            file) compset -P '*[:=]'; _files; return ;;
            dir) compset -P '*[:=]'; _directories; return ;;
        esac
        piece=$cur
        if [[ $cur == *,* ]]; then prefix+="${cur%,*},"; piece=${cur##*,}; fi
        pre=""
        case $kind in
            enum|props) cands=(${=values}) ;;
            hosts)
                if [[ $piece == ssh://* ]]; then
                    pre=ssh://; piece=${piece#ssh://}
                    if [[ $piece == *@* ]]; then pre+="${piece%%@*}@"; piece=${piece#*@}; fi
                fi
                cands=(${${(f)"$(_smbsession_ssh_hosts)"}:#})
                [[ -z $pre ]] && cands+=(localhost) ;;
            *) return 1 ;;
        esac
        for v in $cands; do
            [[ ${(L)v} == ${(L)piece}* ]] && out+=("$prefix$pre$v")
        done
    elif [[ $cur == -* ]]; then
        for line in ${(f)_smbsession_table}; do
            f=("${(@s:|:)line}")
            [[ $f[1] == "$context" && $f[2] == param && ${(L)f[3]} == ${(L)cur}* ]] &&
                out+=("$f[3]")
        done
    elif (( CURRENT == i )); then
        for line in ${(f)_smbsession_table}; do
            f=("${(@s:|:)line}")
            [[ $f[1] == "$context" && $f[2] == sub ]] || continue
            for sub in ${=f[3]}; do [[ $sub == "$cur"* ]] && out+=("$sub"); done
        done
    fi
    (( $#out )) || return 1
    # The candidates are matched here (case-insensitively, as the commands bind names):
    # -U makes zsh take them as they are.
    compadd -U -Q -- $out
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _smbsession "$@"
else
    compdef _smbsession Get-SmbSession Close-SmbSession smbsession
fi
'''


def script(shell: str) -> str:
    """Return the completion script for ``shell`` (``bash`` or ``zsh``)."""
    from .. import __version__

    template = {"bash": _BASH, "zsh": _ZSH}[shell]
    table = _table(_contexts())
    if "'" in table:  # the table is quoted in single quotes in both scripts
        raise ValueError("a parameter declaration holds a single quote")
    return template.replace("@TABLE@", table).replace("@VERSION@", __version__)


def run_completion(argv: Sequence[str]) -> int:
    """Run ``smbsession completion SHELL``: print the script; return the exit code."""
    if len(argv) == 1 and argv[0] in SHELLS:
        sys.stdout.write(script(argv[0]))
        return 0
    if argv and argv[0] in ("-h", "-?", "--help", "-Help", "help"):
        sys.stdout.write(USAGE)
        return 0
    given = " ".join(argv) or "nothing"
    print(f"smbsession completion: give the shell, bash or zsh (got {given}).\n{USAGE}",
          file=sys.stderr, end="")
    return 2
