#!/bin/sh
# meson install: puts the example configs and the logrotate snippet in place
# only where no file of that name is: an operator's files are never
# overwritten (a package marks them conffiles instead).
#   install-examples.sh EXAMPLES_DIR SYSCONFDIR
set -eu
examples=$1 sysconf=$2
root=${DESTDIR:-}
put() { # FROM TO
  if [ -e "$root$2" ]; then
    echo "install-examples: $root$2 exists: left as it is (the example is $1)"
  else
    mkdir -p "$(dirname "$root$2")"
    cp "$root$1" "$root$2"
    chmod 0644 "$root$2"
  fi
}
put "$examples/mtacore.conf" "$sysconf/mtalog/mtacore.conf"
put "$examples/ship.conf" "$sysconf/mtalog/ship.conf"
put "$examples/logrotate.mtalog" "$sysconf/logrotate.d/mtalog"
