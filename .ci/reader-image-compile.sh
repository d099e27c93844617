#!/usr/bin/env bash
# Compiles the reader exactly as the container image's build stage does, without Docker (CI machines
# have no engine): only the paths that stage COPYs into the image, read from the Dockerfile itself so
# the two cannot drift, then that stage's own `tsc` command. Fails when the reader's compile needs a
# file the image would not contain (the way `docker build` would fail).
#
#   bash .ci/reader-image-compile.sh [path/to/Dockerfile] [stage]   (defaults: ./Dockerfile, build)
#
# The reader's image builds in stage `build`, the sink worker's in `build-worker`, the Functions app's
# in `build-functions` and the compose setup job's in `build-setup`.
#
# node_modules is linked from the repository instead of the stage's `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dockerfile=${1:-Dockerfile}
stage_name=${2:-build}
# What the stage's image runs: the reader's entry point, the worker's, the Functions app's entry files
# (package.json `main`: dist/src/functions/*.js) or the setup job's scripts.
case $stage_name in
  build-worker) entrypoints=(dist/src/worker/main.js); what='the worker' ;;
  build-functions) entrypoints=(dist/src/functions/sinks.js dist/src/functions/ordersGenerator.js); what='the Functions app' ;;
  build-setup) entrypoints=(dist/scripts/es-setup.js dist/scripts/adx-setup.js); what='the setup scripts' ;;
  *) entrypoints=(dist/src/reader/main.js); what='the reader' ;;
esac
fail() { echo "[reader-image-compile] $*" >&2; exit 1; }
[ -f "$dockerfile" ] || fail "no Dockerfile at $dockerfile"
[ -d node_modules ] || fail "node_modules missing: run npm ci first"

# The build stage's instructions, continuation lines joined: "KEYWORD args" per line, from the first
# FROM ... AS build up to the next FROM. The second awk reads to the end instead of exiting at that
# FROM: an early exit closes the pipe while the first may still be writing, and under pipefail its
# SIGPIPE (exit 141) failed CI at random.
stage=$(awk '
  { line = line $0 }
  /\\$/ { sub(/\\$/, "", line); next }
  { print line; line = "" }
' "$dockerfile" | awk -v name="$stage_name" '
  toupper($1) == "FROM" { if (inbuild) done = 1; else if (toupper($(NF-1)) == "AS" && $NF == name) inbuild = 1; next }
  inbuild && !done && toupper($1) ~ /^(COPY|ADD|WORKDIR|RUN)$/ { print }
')
[ -n "$stage" ] || fail "no stage $stage_name (FROM ... AS $stage_name) with COPY lines in $dockerfile"

workdir=/
copies=()
tsc_cmd=''
while IFS= read -r instr; do
  read -r -a words <<<"$instr"
  keyword=${words[0]^^}
  case $keyword in
    WORKDIR) workdir=${words[1]} ;;
    ADD) fail "ADD in the build stage is not supported by this check: use COPY ($instr)" ;;
    COPY)
      args=()
      for w in "${words[@]:1}"; do
        case $w in
          --from=*) args=(); continue 2 ;; # from another stage or image: not from the build context
          --*) ;;                          # --chown, --chmod, --link: no effect on what is compiled
          \[*) fail "JSON-form COPY is not supported by this check: $instr" ;;
          *) args+=("$w") ;;
        esac
      done
      [ ${#args[@]} -ge 2 ] || fail "cannot parse: $instr"
      copies+=("$workdir|${args[*]}")
      ;;
    RUN)
      # The compile itself: the &&-separated part of a RUN line that runs tsc.
      if [[ $instr == *tsc* ]]; then
        IFS='&' read -r -a parts <<<"${instr#* }"
        for p in "${parts[@]}"; do [[ $p == *tsc* ]] && tsc_cmd=$(echo "$p" | xargs); done
      fi
      ;;
  esac
done <<<"$stage"
[ ${#copies[@]} -gt 0 ] || fail "no COPY in the build stage of $dockerfile"
[ -n "$tsc_cmd" ] || fail "no RUN ... tsc ... in the build stage of $dockerfile"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/reader-image-compile.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Docker's COPY: a directory source copies its contents into the destination; a file goes into a
# destination ending in / (or given several sources), else becomes the destination. Relative
# destinations are under WORKDIR; the image's root is $tmp.
for entry in "${copies[@]}"; do
  wd=${entry%%|*}
  read -r -a paths <<<"${entry#*|}"
  dest=${paths[-1]}
  unset 'paths[-1]'
  dest=${dest#./}
  [[ $dest == /* ]] || dest="${wd%/}/$dest"
  target="$tmp/${dest#/}"
  for src in "${paths[@]}"; do
    [ -e "$repo/$src" ] || fail "COPY source $src does not exist (docker build would fail the same way: $dockerfile)"
    if [ -d "$repo/$src" ]; then
      mkdir -p "$target"
      cp -R "$repo/$src/." "$target/"
    elif [[ $dest == */ || ${#paths[@]} -gt 1 ]]; then
      mkdir -p "$target"
      cp "$repo/$src" "$target/"
    else
      mkdir -p "$(dirname "$target")"
      cp "$repo/$src" "$target"
    fi
    echo "[reader-image-compile] COPY $src -> $dest"
  done
done

app="$tmp/${workdir#/}"
ln -s "$repo/node_modules" "$app/node_modules"
echo "[reader-image-compile] in $workdir: $tsc_cmd"
(cd "$app" && eval "$tsc_cmd") || fail "$what: the compile fails with only the files the image contains (see the errors above): copy what it needs in stage $stage_name of $dockerfile"
for entrypoint in "${entrypoints[@]}"; do
  [ -f "$app/$entrypoint" ] || fail "compiled, but $entrypoint is missing (the image runs it)"
done
echo "[reader-image-compile] ok: $what, compiled from exactly the files stage $stage_name copies"
