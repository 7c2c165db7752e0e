# admin.sh - policyd-greylist list/stats/delete/delete-client/purge on a state file filled by the plugin
# SPDX-License-Identifier: BSD-2-Clause
# gl_feed runs one request through the plugin on DIR/state.db (the core's store code, the
# daemon's default store) with a given clock; the command reads what it wrote.
set -u
B=$(cd "${PD_BUILDDIR:-.}" && pwd)
FEED=$B/tests/greylist/gl_feed
ADM=$B/policyd-greylist
D=$(mktemp -d /tmp/gladmin.XXXXXX)
trap 'rm -rf "$D"' EXIT
fail=0
T=$(date +%s)
OLD=$((T - 10 * 86400)) # past the retry window: expired now
S='delay = 60
auto_whitelist = 2
auto_whitelist_interval = 1
add_header = false'

# expect WANT GOT WHAT - compare one result
expect() {
	if [ "$1" = "$2" ]; then
		echo "ok - $3"
	else
		echo "not ok - $3: got [$2], want [$1]"
		fail=1
	fi
}

feed() { "$FEED" "$D" "$@" 2>/dev/null; }

expect "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 60 seconds" \
	"$(feed $T "$S" 192.0.2.1 a@x.example b@y.example)" "first request deferred"
expect DUNNO "$(feed $((T + 61)) "$S" 192.0.2.1 a@x.example b@y.example I1)" "retry passes"
feed $T "$S" 192.0.2.9 c@x.example d@y.example >/dev/null
feed $T "$S" 2001:db8:1:2::5 c@x.example d@y.example >/dev/null
# a second client address with two triplets passed (counted a second apart): auto-whitelisted
feed $T "$S" 198.51.100.1 e@x.example f@y.example >/dev/null
feed $T "$S" 198.51.100.1 g@x.example f@y.example >/dev/null
feed $((T + 61)) "$S" 198.51.100.1 e@x.example f@y.example J1 >/dev/null
feed $((T + 63)) "$S" 198.51.100.1 g@x.example f@y.example J2 >/dev/null
# two triplets of long ago: expired, for purge
feed $OLD "$S" 203.0.113.1 old@x.example f@y.example >/dev/null
feed $OLD "$S" 203.0.113.2 old2@x.example f@y.example >/dev/null

out=$("$ADM" -d "$D/state.db" stats)
expect "greylisted: 2
passed: 3
clients: 2
auto-whitelisted: 1" "$out" "stats (expired entries are not counted)"

expect "$out" "$("$ADM" -d "$D/greylist.db" stats)" "-d STATE_DIR/greylist.db (as the README prints it) reads the state file beside it"

list=$("$ADM" -d "$D/state.db" list)
expect 1 "$(printf '%s\n' "$list" | grep -c '^greylisted .* 2001:db8:1:2::/64 c@x.example d@y.example$')" "list shows the IPv6 /64 triplet"
expect 1 "$(printf '%s\n' "$list" | grep -c '^auto-whitelisted .* 198.51.100.1/32$')" "list shows the auto-whitelisted client address"
expect 7 "$(printf '%s\n' "$list" | wc -l | tr -d ' ')" "list has every live entry"

expect "deleted: 192.0.2.0/24 <a@x.example> <b@y.example>" \
	"$("$ADM" -d "$D/state.db" delete 192.0.2.200 A@X.example b@y.example)" "delete a triplet (grouped, folded)"
"$ADM" -d "$D/state.db" delete 192.0.2.200 a@x.example b@y.example >/dev/null
expect 1 $? "deleting it again: exit 1"
expect "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 60 seconds" \
	"$(feed $((T + 100)) "$S" 192.0.2.1 a@x.example b@y.example I9)" "deleted triplet is greylisted again"

expect "deleted: 3 records of 198.51.100.0/24" \
	"$("$ADM" -d "$D/state.db" delete-client 198.51.100.1)" "delete-client: its network's triplets and its address's record"
expect "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 60 seconds" \
	"$(feed $((T + 100)) "$S" 198.51.100.1 new@x.example f@y.example K1)" "client no longer auto-whitelisted"

expect "purged: 2" "$("$ADM" -d "$D/state.db" purge)" "purge removes the expired entries"
expect 0 "$("$ADM" -d "$D/state.db" list | grep -c 'old')" "nothing expired left"

# the same through -c policyd.conf (state_dir relative to the config file; the file is read as
# the daemon reads it, so it must be valid)
mkdir "$D/etc"
PLUGINS=$(ls -d "$B"/plugins/*/.libs | tr '\n' ':' | sed 's/:$//')
cat >"$D/etc/policyd.conf" <<CONF
listen = { "inet:127.0.0.1:10023" }
plugin_dir = "$PLUGINS"
state_dir = ".."   # relative to this file
chain "x" { plugins = { "greylist" } }
greylist {
	skip_networks = { "127.0.0.0/8" }   // core option
	database = "greylist.db"
	ipv4_prefix = 16
	/* comment */ auto_whitelist = 1
}
CONF
feed $T "$S
ipv4_prefix = 16" 10.1.2.3 a@x.example b@y.example >/dev/null
expect "deleted: 10.1.0.0/16 <a@x.example> <b@y.example>" \
	"$("$ADM" -c "$D/etc/policyd.conf" delete 10.1.99.3 a@x.example b@y.example)" "-c: the store and ipv4_prefix from policyd.conf"

# privacy: keys are hashes; delete works with the key file (greylist.db.key in the state dir)
P=$D/priv
mkdir "$P"
SP="$S
privacy = true"
"$FEED" "$P" $T "$SP" 192.0.2.1 secret@x.example b@y.example >/dev/null 2>&1
expect 0 "$("$ADM" -d "$P/state.db" list | grep -c 'secret')" "privacy: no address in the listing"
expect 1 "$("$ADM" -d "$P/state.db" stats | grep -c '^greylisted: 1$')" "privacy: counted"
expect "deleted: 192.0.2.0/24 <secret@x.example> <b@y.example>" \
	"$("$ADM" -d "$P/state.db" delete 192.0.2.1 secret@x.example b@y.example)" "privacy: delete with the key file"

# privacy with a hash_key secret: the command takes it from policyd.conf
H=$D/hk
mkdir "$H"
cat >"$H/policyd.conf" <<CONF
plugin_dir = "$PLUGINS"
state_dir = "$H"
plugins = { "greylist" }
greylist {
	privacy = true
	hash_key = "correct horse battery"
}
CONF
"$FEED" "$H" $T "$S
privacy = true
hash_key = \"correct horse battery\"" 192.0.2.1 s@x.example r@y.example >/dev/null 2>&1
expect 1 "$("$ADM" -c "$H/policyd.conf" stats | grep -c '^greylisted: 1$')" "hash_key: counted"
expect "deleted: 192.0.2.0/24 <s@x.example> <r@y.example>" \
	"$("$ADM" -c "$H/policyd.conf" delete 192.0.2.1 s@x.example r@y.example)" "hash_key: delete with -c"

"$ADM" -d "$D/missing.db" stats 2>/dev/null
expect 3 $? "missing database: exit 3"
[ ! -e "$D/missing.db" ] && [ ! -e "$D/missing.db.lock" ]
expect 0 $? "missing database is not created"
"$ADM" -d "$D/state.db" frobnicate 2>/dev/null
expect 2 $? "unknown command: exit 2"
exit $fail
