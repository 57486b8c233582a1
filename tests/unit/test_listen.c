/* The listening socket (listen.c): a unix: path in a temporary directory, made with the
 * mode asked and replacing only an old socket; 127.0.0.1 port 0; the specs refused with
 * their messages; --socket-mode and --socket-group values; an inherited socket found. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lmtasks/error.h"
#include "lmtasks/listen.h"
#include "tmpstore.h"

static int fd = -1;
static char why[512];

static void
init(void)
{
	tmpstore_setup();
	why[0] = '\0';
}

static void
fini(void)
{
	if (fd >= 0)
		close(fd);
	fd = -1;
	tmpstore_teardown();
}

TestSuite(listen, .init = init, .fini = fini);

/* Checks that fd listens, close-on-exec. */
static void
check_listening(void)
{
	int acc = 0;
	socklen_t len = sizeof(acc);

	cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len), 0);
	cr_assert(acc, "the socket does not listen");
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "the socket is not close-on-exec");
}

/* Connects to the unix socket at path; returns 0 or errno. */
static int
connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int c = socket(AF_UNIX, SOCK_STREAM, 0), rc;

	cr_assert_geq(c, 0);
	strcpy(sa.sun_path, path);
	rc = connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
	close(c);
	return rc;
}

Test(listen, a_unix_socket_is_made_with_its_mode_and_takes_connections)
{
	char spec[PATH_MAX + 8];
	struct stat st;
	const char *path = tmpstore_path("fcgi.sock");

	snprintf(spec, sizeof(spec), "unix:%s", path);
	cr_assert_str_eq(listen_unix_path(spec), path);
	cr_assert_eq(listen_open(spec, 0640, (gid_t)-1, &fd, why, sizeof(why)), 0, "%s", why);
	check_listening();
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0640);
	cr_assert_eq(connect_unix(path), 0);
	/* The umask the socket was made under is put back. */
	mode_t um = umask(022);
	umask(um);
	cr_assert_neq(um, 0177, "the process's umask was left at 0177");
}

Test(listen, an_old_socket_is_replaced)
{
	char spec[PATH_MAX + 8];
	int first;

	snprintf(spec, sizeof(spec), "unix:%s", tmpstore_path("fcgi.sock"));
	cr_assert_eq(listen_open(spec, LISTEN_MODE_DEFAULT, (gid_t)-1, &first, why,
	    sizeof(why)), 0, "%s", why);
	close(first);
	cr_assert_eq(listen_open(spec, LISTEN_MODE_DEFAULT, (gid_t)-1, &fd, why, sizeof(why)), 0,
	    "%s", why);
	check_listening();
}

Test(listen, a_file_that_is_no_socket_is_left_alone)
{
	char spec[PATH_MAX + 8];
	const char *path = tmpstore_path("data.mdb");
	struct stat st;
	int f = open(path, O_WRONLY | O_CREAT, 0600);

	cr_assert_geq(f, 0);
	cr_assert_eq(write(f, "keep", 4), 4);
	close(f);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	cr_assert_eq(listen_open(spec, LISTEN_MODE_DEFAULT, (gid_t)-1, &fd, why, sizeof(why)),
	    EADDRINUSE);
	cr_assert_eq(fd, -1);
	cr_assert_eq(strncmp(why, "--listen unix:", 14), 0, "%s", why);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_size, 4);
}

Test(listen, a_unix_path_too_long_or_empty_is_refused)
{
	char spec[300];

	memset(spec, 'a', sizeof(spec) - 1);
	spec[sizeof(spec) - 1] = '\0';
	memcpy(spec, "unix:/tmp/", 10);
	cr_assert_eq(listen_open(spec, LISTEN_MODE_DEFAULT, (gid_t)-1, &fd, why, sizeof(why)),
	    LMT_EINVAL);
	cr_assert_not_null(strstr(why, ": the socket path is empty or too long"), "%s", why);
	cr_assert_eq(strncmp(why, "--listen unix:/tmp/aaa", 22), 0, "%s", why);
	why[0] = '\0';
	cr_assert_eq(listen_open("unix:", LISTEN_MODE_DEFAULT, (gid_t)-1, &fd, why, sizeof(why)),
	    LMT_EINVAL);
	cr_assert_str_eq(why, "--listen unix:: the socket path is empty or too long");
	cr_assert_eq(fd, -1);
}

Test(listen, loopback_port_0_listens_on_a_port_of_its_own)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	cr_assert_eq(listen_open("127.0.0.1:0", 0, (gid_t)-1, &fd, why, sizeof(why)), 0, "%s",
	    why);
	check_listening();
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	cr_assert_eq(sa.sin_family, AF_INET);
	cr_assert_eq(ntohl(sa.sin_addr.s_addr), INADDR_LOOPBACK);
	cr_assert_neq(ntohs(sa.sin_port), 0);

	int c = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(c, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&sa, len), 0);
	close(c);
	cr_assert_null(listen_unix_path("127.0.0.1:0"));
}

Test(listen, specs_that_are_no_address_are_refused)
{
	static const char *const bad[] = { "9000", ":9000", "127.0.0.1:", "localhost" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		cr_assert_eq(listen_open(bad[i], 0, (gid_t)-1, &fd, why, sizeof(why)), LMT_EINVAL,
		    "%s taken", bad[i]);
		cr_assert_not_null(strstr(why, "expected unix:PATH or HOST:PORT"), "%s", why);
		cr_assert_eq(fd, -1);
	}
	cr_assert_eq(listen_open("127.0.0.1:nosuchservice", 0, (gid_t)-1, &fd, why,
	    sizeof(why)), LMT_EINVAL);
	cr_assert_eq(strncmp(why, "--listen 127.0.0.1:nosuchservice: ", 34), 0, "%s", why);
}

Test(listen, socket_modes_are_octal_up_to_0777)
{
	unsigned m = 1;

	cr_assert_eq(listen_mode("0660", &m), 0);
	cr_assert_eq(m, 0660);
	cr_assert_eq(listen_mode("777", &m), 0);
	cr_assert_eq(m, 0777);
	cr_assert_eq(listen_mode("0", &m), 0);
	cr_assert_eq(m, 0);
	cr_assert_eq(listen_mode("", &m), LMT_EINVAL);
	cr_assert_eq(listen_mode("1000", &m), LMT_EINVAL);
	cr_assert_eq(listen_mode("0668", &m), LMT_EINVAL);
	cr_assert_eq(listen_mode("rw", &m), LMT_EINVAL);
	cr_assert_eq(listen_mode("-1", &m), LMT_EINVAL);
}

Test(listen, socket_groups_by_name_or_number)
{
	gid_t g = 12345;

	cr_assert_eq(listen_group("root", &g), 0);
	cr_assert_eq(g, 0);
	cr_assert_eq(listen_group("4242", &g), 0);
	cr_assert_eq(g, 4242);
	cr_assert_eq(listen_group("no-such-group-lmtasks", &g), LMT_EINVAL);
	cr_assert_eq(listen_group("12x", &g), LMT_EINVAL);
	cr_assert_eq(listen_group("", &g), LMT_EINVAL);
}

Test(listen, an_inherited_listening_socket_is_found_on_stdin)
{
	int saved = dup(0), got = -1;

	cr_assert_geq(saved, 0);
	cr_assert_eq(unsetenv("LISTEN_FDS"), 0);
	cr_assert_eq(listen_open("127.0.0.1:0", 0, (gid_t)-1, &fd, why, sizeof(why)), 0, "%s",
	    why);
	int devnull = open("/dev/null", O_RDONLY);
	cr_assert_geq(devnull, 0);
	cr_assert_eq(dup2(devnull, 0), 0);
	cr_assert_eq(listen_inherited(&got), LMT_EINVAL, "/dev/null taken for a socket");
	cr_assert_eq(dup2(fd, 0), 0);
	cr_assert_eq(listen_inherited(&got), 0);
	cr_assert_eq(got, 0);
	cr_assert_eq(dup2(saved, 0), 0);
	close(saved);
	close(devnull);
}
