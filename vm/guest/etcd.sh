#!/usr/bin/env bash
# The tutorial's two-VM demo: dynamic, etcd store (see demo.sh).
export DEMO=dynamic STORE=etcd
# shellcheck source=demo.sh
. "$REPO/vm/guest/demo.sh"
