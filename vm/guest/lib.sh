# shellcheck shell=bash
# Helpers for scenario scripts (vm/guest/<scenario>.sh): source it with
#   . "$REPO/vm/guest/lib.sh"
# The two VMs coordinate through files in the shared folder /vagrant ($SHARED), which
# both see live: one marks a step done, the other waits for the mark.

SHARED="${SHARED:-/vagrant}"

# step TEXT: a timestamped line in the log (seconds since the guest booted).
step() {
  local uptime
  read -r uptime _ </proc/uptime
  echo "== [$HOST ${uptime}s] $*"
}

# mark NAME: create $SHARED/NAME (atomically: whoever waits never sees it half-written),
# with the rest of the arguments as its content.
mark() {
  local name="$1"
  shift
  printf '%s\n' "$*" >"$SHARED/.$name.tmp.$HOST"
  mv "$SHARED/.$name.tmp.$HOST" "$SHARED/$name"
}

# wait_for FILE [SECONDS]: wait until FILE exists (a path relative to $SHARED, or
# absolute); fails after SECONDS (default 120) with a message naming it.
wait_for() {
  local file="$1" seconds="${2:-120}" deadline now
  case "$file" in
    /*) ;;
    *) file="$SHARED/$file" ;;
  esac
  read -r now _ </proc/uptime
  deadline=$((${now%.*} + seconds))
  while [ ! -e "$file" ]; do
    read -r now _ </proc/uptime
    if [ "${now%.*}" -ge "$deadline" ]; then
      echo "$HOST: timed out after ${seconds}s waiting for $file" >&2
      return 1
    fi
    sleep 0.1
  done
}

# fail TEXT: stop the scenario with a message.
fail() {
  echo "$HOST: FAILED: $*" >&2
  exit 1
}

# barrier NAME [SECONDS]: both VMs reach this point before either goes on (each marks
# NAME.$HOST and waits for NAME.$PEER). Use one before the end of a scenario so neither
# VM powers off while the other still talks to it.
barrier() {
  mark "$1.$HOST"
  wait_for "$1.$PEER" "${2:-120}"
}
