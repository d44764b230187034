#!/usr/bin/env bash
# The tutorial's two-VM demo: static, dir store (see demo.sh).
export DEMO=static STORE=dir
# shellcheck source=demo.sh
. "$REPO/vm/guest/demo.sh"
