/* privileges.c - who the daemon runs as: the user and group to drop to, dropping them for good */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "privileges.h"
#include "log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* pd_priv_lookup - uid/gid to drop to; -1 when the config names no user */
int pd_priv_lookup(const pd_conf *c, uid_t *uid, gid_t *gid)
{
	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (*c->user) {
		struct passwd *pw = getpwnam(c->user);

		if (!pw) {
			pd_log(PD_LOG_ERR, "user \"%s\": no such user", c->user);
			return -1;
		}
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (*c->group) {
		struct group *gr = getgrnam(c->group);

		if (!gr) {
			pd_log(PD_LOG_ERR, "group \"%s\": no such group", c->group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

void pd_priv_check_readable(const pd_conf *c, const char *file, uid_t uid, gid_t gid)
{
	struct stat st;
	gid_t groups[256];
	int ng = 256, ok;

	if (uid == (uid_t)-1 || uid == 0 || stat(file, &st) < 0)
		return;
	ok = (st.st_mode & S_IROTH) || (st.st_uid == uid && (st.st_mode & S_IRUSR));
	if (!ok && (st.st_mode & S_IRGRP)) {
		if (st.st_gid == gid)
			ok = 1;
		else if (*c->user && getgrouplist(c->user, gid, groups, &ng) >= 0)
			for (int i = 0; i < ng && !ok; i++)
				ok = groups[i] == st.st_gid;
	}
	if (!ok)
		pd_log(PD_LOG_WARNING,
		       "%s is not readable by user \"%s\": a reload (SIGHUP) after dropping privileges will fail; "
		       "chgrp %s it (mode 0640)",
		       file, c->user, *c->group ? c->group : c->user);
}

/* pd_priv_drop - become the configured user for good */
int pd_priv_drop(const pd_conf *c, uid_t uid, gid_t gid)
{
	if (uid == 0)
		pd_log(PD_LOG_WARNING, "running as root, as user = \"root\" in %s asks", c->file);
	if (uid == (uid_t)-1 && gid == (gid_t)-1)
		return 0;
	if (geteuid() != 0) {
		if ((uid == (uid_t)-1 || uid == geteuid()) && (gid == (gid_t)-1 || gid == getegid()))
			return 0;
		pd_log(PD_LOG_ERR, "cannot switch to user \"%s\": policyd is not running as root", c->user);
		return -1;
	}
	if (gid != (gid_t)-1 &&
	    ((*c->user ? initgroups(c->user, gid) : setgroups(1, &gid)) < 0 || setgid(gid) < 0)) {
		pd_log(PD_LOG_ERR, "cannot switch to group %ld: %s", (long)gid, strerror(errno));
		return -1;
	}
	if (uid != (uid_t)-1 && setuid(uid) < 0) {
		pd_log(PD_LOG_ERR, "cannot switch to user \"%s\": %s", c->user, strerror(errno));
		return -1;
	}
	if (uid != 0 && uid != (uid_t)-1 && setuid(0) == 0) {
		pd_log(PD_LOG_ERR, "privileges could be regained after dropping them; refusing to run");
		return -1;
	}
	pd_log(PD_LOG_INFO, "running as uid %ld gid %ld", (long)getuid(), (long)getgid());
	return 0;
}
