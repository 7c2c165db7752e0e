# admin.sh - policyd-greylist list/stats/delete/delete-client/purge on a database filled by the plugin
# SPDX-License-Identifier: BSD-2-Clause
set -u
B=${PD_BUILDDIR:-.}
FEED=$B/tests/greylist/gl_feed
ADM=$B/policyd-greylist
D=$(mktemp -d /tmp/gladmin.XXXXXX)
trap 'rm -rf "$D"' EXIT
fail=0
T=1700000000
S='sync_interval = 0
cleanup_interval = 0
delay = 60
auto_whitelist = 2
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
# a second client with two deliveries: auto-whitelisted
feed $T "$S" 198.51.100.1 e@x.example f@y.example >/dev/null
feed $((T + 61)) "$S" 198.51.100.1 e@x.example f@y.example J1 >/dev/null
feed $((T + 62)) "$S" 198.51.100.1 e@x.example f@y.example J2 >/dev/null

out=$("$ADM" -d "$D/greylist.db" stats)
expect "greylisted: 2
passed: 2
clients: 2
auto-whitelisted: 1" "$out" "stats"

list=$("$ADM" -d "$D/greylist.db" list)
expect 1 "$(printf '%s\n' "$list" | grep -c '^greylisted .* 2001:db8:1:2::/64 c@x.example d@y.example$')" "list shows the IPv6 /64 triplet"
expect 1 "$(printf '%s\n' "$list" | grep -c '^auto-whitelisted .* 198.51.100.0/24$')" "list shows the auto-whitelisted client"
expect 6 "$(printf '%s\n' "$list" | wc -l | tr -d ' ')" "list has every entry"

expect "deleted: 192.0.2.0/24 <a@x.example> <b@y.example>" \
	"$("$ADM" -d "$D/greylist.db" delete 192.0.2.200 A@X.example b@y.example)" "delete a triplet (grouped, folded)"
"$ADM" -d "$D/greylist.db" delete 192.0.2.200 a@x.example b@y.example >/dev/null
expect 1 $? "deleting it again: exit 1"
expect "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 60 seconds" \
	"$(feed $((T + 100)) "$S" 192.0.2.1 a@x.example b@y.example I9)" "deleted triplet is greylisted again"

expect "deleted: 2 records of 198.51.100.0/24" \
	"$("$ADM" -d "$D/greylist.db" delete-client 198.51.100.77)" "delete-client"
expect "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 60 seconds" \
	"$(feed $((T + 100)) "$S" 198.51.100.1 new@x.example f@y.example K1)" "client no longer auto-whitelisted"

# purge with the default retry window and lifetime: everything since T is far in the past now
expect "purged: 5" "$("$ADM" -d "$D/greylist.db" purge)" "purge removes expired entries"
expect "" "$("$ADM" -d "$D/greylist.db" list)" "nothing left"

# the same through -c policyd.conf (state_dir relative to the config file, other sections ignored)
mkdir "$D/etc"
cat >"$D/etc/policyd.conf" <<CONF
listen = { "inet:127.0.0.1:10023" }
state_dir = ".."   # relative to this file
chain "x" { plugins = { "greylist" } }
syslog { protocol_state = { "RCPT" } }
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
	"$("$ADM" -c "$D/etc/policyd.conf" delete 10.1.99.3 a@x.example b@y.example)" "-c: database and ipv4_prefix from policyd.conf"

# privacy: keys are hashes; delete works with the key file beside the database
P=$D/priv
mkdir "$P"
SP="$S
privacy = true"
"$FEED" "$P" $T "$SP" 192.0.2.1 secret@x.example b@y.example >/dev/null 2>&1
expect 0 "$("$ADM" -d "$P/greylist.db" list | grep -c 'secret')" "privacy: no address in the listing"
expect 1 "$("$ADM" -d "$P/greylist.db" stats | grep -c '^greylisted: 1$')" "privacy: counted"
expect "deleted: 192.0.2.0/24 <secret@x.example> <b@y.example>" \
	"$("$ADM" -d "$P/greylist.db" delete 192.0.2.1 secret@x.example b@y.example)" "privacy: delete with the key file"

# privacy with a hash_key secret: the command takes it from policyd.conf
H=$D/hk
mkdir "$H"
cat >"$H/policyd.conf" <<CONF
state_dir = "$H"
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
"$ADM" -d "$D/greylist.db" frobnicate 2>/dev/null
expect 2 $? "unknown command: exit 2"
exit $fail
