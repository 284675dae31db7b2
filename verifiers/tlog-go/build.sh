#!/bin/sh
# Builds tlog-verify offline against Debian's golang.org/x/mod sources
# (apt-get install -y golang-go golang-golang-x-mod-dev), in GOPATH mode so
# no module proxy is consulted. Usage: build.sh [OUTPUT] (default ./tlog-verify).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/tlog-verify}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
gocode=${GOCODE:-/usr/share/gocode}
if [ ! -d "$gocode/src/golang.org/x/mod/sumdb/tlog" ]; then
  echo "build.sh: $gocode/src/golang.org/x/mod missing; run: apt-get install -y golang-go golang-golang-x-mod-dev" >&2
  exit 1
fi
cd "$here"
GO111MODULE=off GOPATH=$gocode GOFLAGS= GOPROXY=off GOTOOLCHAIN=local \
  go build -o "$out" .
