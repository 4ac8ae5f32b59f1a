#!/usr/bin/env bash
# The Debian package, as an operator gets it (run by scripts/package --test,
# which the test command runs):
# 1. unpacked into a scratch root: its mtacore loads its mtalog.so and writes
#    records with its example config (paths moved into the scratch root),
#    mtalog-ship --check accepts its example ship.conf, its man pages render
#    without a warning and carry every option --help names, and its unit
#    passes systemd-analyze verify; systemd-analyze security scores it;
# 2. with CI=true only (it changes the machine): installed with dpkg -i,
#    the system user and the unit in place, the installed programs run, then
#    purged, and nothing of it left.
#   test/package/test_package.sh DEB
set -euo pipefail
deb=$1
fail() { echo "test_package: FAILED: $*" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

echo "== unpacked into $root"
dpkg-deb -x "$deb" "$root"
for f in usr/bin/mtacore usr/bin/mtalog-ship etc/mtalog/mtacore.conf etc/mtalog/ship.conf etc/logrotate.d/mtalog \
         lib/systemd/system/mtalog-ship.service usr/share/man/man8/mtacore.8.gz usr/share/man/man8/mtalog-ship.8.gz \
         usr/share/man/man5/mtalog.conf.5.gz usr/share/doc/mtalog/copyright usr/include/mtahooks/ec_hooks.h; do
  [ -e "$root/$f" ] || fail "the package has no /$f"
done
module=$(cd "$root" && find usr/lib -name mtalog.so)
[ -n "$module" ] || fail "the package has no mtalog.so"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
for f in /etc/mtalog/mtacore.conf /etc/mtalog/ship.conf /etc/logrotate.d/mtalog; do
  grep -qx "$f" <<<"$conffiles" || fail "$f is not a conffile"
done

# The example configs with their absolute paths moved into the scratch root.
sed -e "s|\"/usr/lib/|\"$root/usr/lib/|" -e "s|/var/log/mtalog|$root/var/log/mtalog|g" \
  "$root/etc/mtalog/mtacore.conf" >"$root/etc/mtalog/mtacore.scratch.conf"
sed -e "s|\"/etc/mtalog/mtacore.conf\"|\"$root/etc/mtalog/mtacore.scratch.conf\"|" \
    -e "s|/var/lib/mtalog-ship|$root/var/lib/mtalog-ship|" \
  "$root/etc/mtalog/ship.conf" >"$root/etc/mtalog/ship.scratch.conf"
grep -q "$root/usr/lib/.*/mtacore/modules" "$root/etc/mtalog/mtacore.scratch.conf" ||
  fail "the example mtacore.conf names no modules_path under /usr/lib"
mkdir -p "$root/var/log/mtalog" "$root/var/lib/mtalog-ship"
"$root/usr/bin/mtacore" --config "$root/etc/mtalog/mtacore.scratch.conf" --check ||
  fail "mtacore --check refused the example config"
"$root/usr/bin/mtacore" --config "$root/etc/mtalog/mtacore.scratch.conf" --generate 3000 --seed 7 --quiet ||
  fail "mtacore --generate failed"
records=$(cat "$root"/var/log/mtalog/attempt.log "$root"/var/log/mtalog/connfail.log "$root"/var/log/mtalog/mainlog.ec | wc -l)
# Every hook call is one record (mainlog.ec's header line aside).
[ "$records" -ge 3000 ] || fail "the installed mtacore wrote $records records for 3000 hook calls"
head -c 300 "$root/var/log/mtalog/attempt.log" | grep -q '^{"type":"attempt"' || fail "attempt.log is not JSON records"
echo "mtacore wrote $records lines with the example config"
"$root/usr/bin/mtalog-ship" --check "$root/etc/mtalog/ship.scratch.conf" || fail "mtalog-ship --check refused the example ship.conf"

# Man pages: no warning from man, every option of --help in the page.
for page in man8/mtacore.8.gz man8/mtalog-ship.8.gz man5/mtalog.conf.5.gz; do
  warnings=$(MANWIDTH=80 man --warnings -l "$root/usr/share/man/$page" 2>&1 >/dev/null || true)
  [ -z "$warnings" ] || fail "man -l $page warns: $warnings"
done
# Each option --help names has its entry under OPTIONS (an indented line
# starting with it), not only a mention in the synopsis.
for prog in mtacore mtalog-ship; do
  options=$(MANWIDTH=200 man -l "$root/usr/share/man/man8/$prog.8.gz" 2>/dev/null | col -b |
    sed -n '/^OPTIONS/,/^[A-Z]/p')
  for opt in $("$root/usr/bin/$prog" --help | grep -oE '(^|[ [])--[a-z][a-z-]+' | tr -d ' [' | sort -u); do
    grep -qE -- "^ +(-[a-zA-Z], )?$opt( |$)" <<<"$options" || fail "man $prog has no OPTIONS entry for $opt, which --help names"
  done
done
conf_text=$(MANWIDTH=200 man -l "$root/usr/share/man/man5/mtalog.conf.5.gz" 2>/dev/null | col -b)
documented=$(sed -n '/<!-- options:begin -->/,/<!-- options:end -->/p' "$(dirname "$0")/../../docs/configuration.md" |
  grep -oE '^\| `[a-z_]+`' | tr -d '|` ')
[ "$(wc -w <<<"$documented")" -gt 20 ] || fail "no option table in docs/configuration.md"
for opt in $documented; do
  grep -qE "^ +$opt = " <<<"$conf_text" || fail "man mtalog.conf lacks $opt, which docs/configuration.md has"
done
echo "man pages: render without warnings; every option of --help and docs/configuration.md is in them"

# The unit: systemd-analyze verify (its programs at their scratch paths) and
# the security score.
sed "s|/usr/bin/|$root/usr/bin/|g" "$root/lib/systemd/system/mtalog-ship.service" >"$root/mtalog-ship.service"
systemd-analyze verify --man=no "$root/mtalog-ship.service" || fail "systemd-analyze verify"
security=$(systemd-analyze security --offline=true "$root/mtalog-ship.service" 2>&1 | grep 'Overall exposure')
echo "unit: systemd-analyze verify passes; ${security#→ }"
score=$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<<"$security")
awk "BEGIN { exit !($score <= 2.0) }" || fail "exposure $score: the unit should score 2.0 or better"

if [ "${CI:-}" != true ]; then
  echo "(dpkg -i and purge: only with CI=true)"
  exit 0
fi
echo "== installed with dpkg -i (CI=true)"
if dpkg-query -W -f='${Status}' mtalog 2>/dev/null | grep -q 'install ok installed'; then
  fail "a package mtalog is installed already: this test installs and purges its own"
fi
logdir_was_there=$([ -e /var/log/mtalog ] && echo 1 || echo 0)
cleanup() {
  dpkg --purge mtalog >/dev/null 2>&1 || true
  [ "$logdir_was_there" = 1 ] || rm -rf /var/log/mtalog
  rm -rf "$root"
}
trap cleanup EXIT
# apt-get, not dpkg -i: it installs what the package depends on.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(realpath "$deb")" >/dev/null || fail "apt-get install"
getent passwd mtalog-ship >/dev/null || fail "no system user mtalog-ship"
id -nG mtalog-ship | tr ' ' '\n' | grep -qx adm || fail "mtalog-ship is not in the group adm"
if [ "$logdir_was_there" = 0 ]; then
  [ "$(stat -c '%U:%G %a' /var/log/mtalog)" = "root:adm 2750" ] ||
    fail "/var/log/mtalog is not root:adm 2750: $(stat -c '%U:%G %a' /var/log/mtalog)"
fi
# Man pages where man finds them, unless this image leaves them out.
if grep -qs '^path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
  echo "(man -w skipped: dpkg excludes /usr/share/man on this machine)"
else
  man -w mtalog-ship >/dev/null || fail "man mtalog-ship finds nothing"
  man -w 5 mtalog.conf >/dev/null || fail "man 5 mtalog.conf finds nothing"
fi
systemd-analyze verify /lib/systemd/system/mtalog-ship.service || fail "systemd-analyze verify (installed)"
/usr/bin/mtacore --config /etc/mtalog/mtacore.conf --check || fail "installed mtacore --check"
# The installed mtacore writes its example's files (0640, the group adm
# through the setgid directory) and the service's user reads them, and its
# config, as the service would.
/usr/bin/mtacore --config /etc/mtalog/mtacore.conf --generate 200 --quiet || fail "installed mtacore --generate"
if [ "$logdir_was_there" = 0 ]; then
  [ "$(stat -c '%G %a' /var/log/mtalog/attempt.log)" = "adm 640" ] ||
    fail "attempt.log is not adm 640: $(stat -c '%G %a' /var/log/mtalog/attempt.log)"
  su -s /bin/sh mtalog-ship -c 'head -n 1 /var/log/mtalog/attempt.log' | grep -q '"type":"attempt"' ||
    fail "the user mtalog-ship cannot read /var/log/mtalog/attempt.log"
fi
su -s /bin/sh mtalog-ship -c '/usr/bin/mtalog-ship --check /etc/mtalog/ship.conf' >/dev/null ||
  fail "mtalog-ship --check, as the user mtalog-ship"
# The state the service would leave, for purge to remove.
install -d -o mtalog-ship -g mtalog-ship -m 0750 /var/lib/mtalog-ship
echo '{}' >/var/lib/mtalog-ship/cursor.json
dpkg --purge mtalog >/dev/null || fail "dpkg --purge"
! getent passwd mtalog-ship >/dev/null || fail "the user mtalog-ship is still there after purge"
for f in /usr/bin/mtacore /usr/bin/mtalog-ship /etc/mtalog/ship.conf /lib/systemd/system/mtalog-ship.service \
         /var/lib/mtalog-ship; do
  [ ! -e "$f" ] || fail "$f is still there after purge"
done
echo "installed: user mtalog-ship (group adm) reads the records the installed mtacore wrote; unit verified; purged: nothing left"
