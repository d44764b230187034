#!/usr/bin/env bash
# The tutorial's two-VM demo: flannel, etcd store (see demo.sh).
export DEMO=flannel STORE=etcd
# shellcheck source=demo.sh
. "$REPO/vm/guest/demo.sh"
