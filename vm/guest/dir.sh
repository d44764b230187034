#!/usr/bin/env bash
# The tutorial's two-VM demo: dynamic, dir store (see demo.sh).
export DEMO=dynamic STORE=dir
# shellcheck source=demo.sh
. "$REPO/vm/guest/demo.sh"
