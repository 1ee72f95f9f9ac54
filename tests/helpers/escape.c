/* Escape attempts for tests/escape.rs. Each mode tries one thing and
 * prints one line: "ok [detail]" when the kernel let it happen, or
 * "err ERRNAME" with the errno it returned. "setup ..." (exit 2) means the
 * attempt could not even be staged, so the test must not count it.
 * Built at test time with `cc`; runs inside and outside the jail. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <termios.h>
#include <unistd.h>

static int report(long rc) {
    if (rc < 0) {
        const char *n = strerrorname_np(errno);
        printf("err %s\n", n ? n : "?");
    } else {
        printf("ok %ld\n", rc);
    }
    return 0;
}

static int setup_fail(const char *what) {
    printf("setup %s: %s\n", what, strerror(errno));
    return 2;
}

/* A pty that is our controlling terminal, so TIOCSTI's own ctty check
 * passes and only a policy can refuse it. Runs in a forked child. */
static int ctty_pty(void) {
    if (setsid() < 0) return setup_fail("setsid"), -1;
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0) return setup_fail("posix_openpt"), -1;
    if (grantpt(m) || unlockpt(m)) return setup_fail("grantpt"), -1;
    char *name = ptsname(m);
    if (!name) return setup_fail("ptsname"), -1;
    int s = open(name, O_RDWR);
    if (s < 0) return setup_fail("open slave"), -1;
    if (ioctl(s, TIOCSCTTY, 0) < 0 && errno != EPERM) return setup_fail("TIOCSCTTY"), -1;
    return s;
}

static int in_child(int (*f)(unsigned long), unsigned long arg) {
    fflush(stdout);
    pid_t p = fork();
    if (p < 0) return setup_fail("fork");
    if (p == 0) _exit(f(arg));
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
}

static int do_tiocsti(unsigned long req) {
    int s = ctty_pty();
    if (s < 0) return 2;
    char c = 'X';
    /* Through syscall() so the full 64-bit request reaches the kernel. */
    long rc = syscall(SYS_ioctl, s, req, &c);
    report(rc);
    if (rc == 0) {
        /* Prove the byte landed in the terminal's input queue. */
        struct termios t;
        tcgetattr(s, &t);
        cfmakeraw(&t);
        tcsetattr(s, TCSANOW, &t);
        char got = 0;
        if (read(s, &got, 1) == 1) printf("injected %c\n", got);
    }
    fflush(stdout);
    return 0;
}

static int do_tioclinux(unsigned long unused) {
    (void)unused;
    int s = ctty_pty();
    if (s < 0) return 2;
    char sub = 11; /* TIOCL_GETSHIFTSTATE */
    report(ioctl(s, TIOCLINUX, &sub));
    fflush(stdout);
    return 0;
}

static int pause_child(unsigned long unused) {
    (void)unused;
    pause();
    return 0;
}

static int ptrace_own_child(void) {
    fflush(stdout);
    pid_t p = fork();
    if (p < 0) return setup_fail("fork");
    if (p == 0) { pause(); _exit(0); }
    long rc = ptrace(PTRACE_SEIZE, p, 0, 0);
    report(rc);
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    return 0;
}

static int clone_newuser(void) {
    long p = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
    if (p == 0) _exit(0);
    report(p);
    if (p > 0) waitpid(p, NULL, 0);
    return 0;
}

struct clone_args_v0 { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; };

static int do_clone3(uint64_t flags) {
    struct clone_args_v0 a = {0};
    a.flags = flags;
    a.exit_signal = SIGCHLD;
    fflush(stdout);
    long p = syscall(SYS_clone3, &a, sizeof a);
    if (p == 0) _exit(0);
    report(p);
    if (p > 0) waitpid(p, NULL, 0);
    return 0;
}

#if defined(__x86_64__)
static long int80_getpid(void) {
    long ret;
    /* i386 getpid is 20; through the 32-bit entry point. */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
    return ret;
}
#endif

static int abstract_addr(const char *name, struct sockaddr_un *a, socklen_t *len) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(name);
    if (n + 1 > sizeof a->sun_path) return -1;
    memcpy(a->sun_path + 1, name, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    return 0;
}

/* Finds a process whose command line is exactly ARGV0 ARG1 (up to 10 s),
 * then tries to signal it and to ptrace it. */
static int hunt(const char *a0, const char *a1) {
    char want[256];
    int wl = snprintf(want, sizeof want, "%s%c%s%c", a0, 0, a1, 0);
    for (int round = 0; round < 200; round++) {
        DIR *d = opendir("/proc");
        if (!d) return setup_fail("opendir /proc");
        struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == getpid()) continue;
            char path[64], buf[256];
            snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
            int fd = open(path, O_RDONLY);
            if (fd < 0) continue;
            ssize_t n = read(fd, buf, sizeof buf);
            close(fd);
            if (n == wl && !memcmp(buf, want, wl)) {
                closedir(d);
                printf("found %d\n", pid);
                printf("ptrace "); report(ptrace(PTRACE_SEIZE, pid, 0, 0));
                printf("kill "); report(kill(pid, SIGTERM));
                return 0;
            }
        }
        closedir(d);
        usleep(50000);
    }
    printf("notfound\n");
    return 2;
}

/* Runs PROG as if the kernel had no Landlock: a seccomp filter answers
 * the three Landlock syscalls with ENOSYS (as a kernel without it does). */
static int without_landlock(char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 444, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 445, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 446, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    };
    struct sock_fprog prog = { sizeof f / sizeof f[0], f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return setup_fail("seccomp");
    execv(argv[0], argv);
    return setup_fail("execv");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) { fprintf(stderr, "usage: escape MODE [ARGS]\n"); return 64; }
    const char *m = argv[1];
    if (!strcmp(m, "tiocsti")) return in_child(do_tiocsti, TIOCSTI);
    if (!strcmp(m, "tiocsti-high")) return in_child(do_tiocsti, 0xdead00000000UL | TIOCSTI);
    if (!strcmp(m, "tiocsti-stdin")) {
        /* The real attack: push a command into the terminal the jail was
         * started from (our stdin and controlling terminal). */
        char c = '#';
        return report(ioctl(0, TIOCSTI, &c));
    }
    if (!strcmp(m, "tioclinux")) return in_child(do_tioclinux, 0);
    if (!strcmp(m, "io_uring")) {
        unsigned char params[120] = {0}; /* struct io_uring_params */
        return report(syscall(SYS_io_uring_setup, 4, params));
    }
    if (!strcmp(m, "userfaultfd")) return report(syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
    if (!strcmp(m, "bpf")) return report(syscall(SYS_bpf, 0xffff, NULL, 0)); /* unknown cmd: EINVAL unless filtered */
    if (!strcmp(m, "perf")) {
        struct perf_event_attr a = {0};
        a.size = sizeof a;
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_CPU_CLOCK;
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        return report(syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
    }
    if (!strcmp(m, "keyctl")) return report(syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 0));
    if (!strcmp(m, "add_key")) return report(syscall(SYS_add_key, "user", "jailtest", "x", 1, -3));
    if (!strcmp(m, "mount")) return report(mount("none", "/tmp", "tmpfs", MS_NOUSER, NULL)); /* EINVAL unless filtered */
    if (!strcmp(m, "umount")) return report(umount2("/tmp", 0x80000000)); /* invalid flag: EINVAL unless filtered */
    if (!strcmp(m, "unshare-user")) return report(unshare(CLONE_NEWUSER));
    if (!strcmp(m, "clone-newuser")) return clone_newuser();
    if (!strcmp(m, "clone3")) return do_clone3(0);
    if (!strcmp(m, "personality")) return report(personality(READ_IMPLIES_EXEC));
    if (!strcmp(m, "ptrace-child")) return ptrace_own_child();
    if (!strcmp(m, "ptrace") && argc > 2) return report(ptrace(PTRACE_SEIZE, atoi(argv[2]), 0, 0));
    if (!strcmp(m, "kill") && argc > 2) return report(kill(atoi(argv[2]), 0));
    if (!strcmp(m, "vsock")) return report(syscall(SYS_socket, 40L /* AF_VSOCK */, SOCK_STREAM, 0));
    if (!strcmp(m, "vsock-high")) return report(syscall(SYS_socket, 0x100000000L | 40, SOCK_STREAM, 0));
    if (!strcmp(m, "x32")) return report(syscall(39 | 0x40000000)); /* x32 getpid */
#if defined(__x86_64__)
    if (!strcmp(m, "int80")) {
        long r = int80_getpid();
        if (r < 0) { errno = (int)-r; return report(-1); }
        return report(r);
    }
#endif
    if (!strcmp(m, "without-landlock") && argc > 2) return without_landlock(argv + 2);
    if (!strcmp(m, "hunt") && argc > 3) return hunt(argv[2], argv[3]);
    if (!strcmp(m, "dumpable")) { printf("dumpable %d\n", prctl(PR_GET_DUMPABLE)); return 0; }
    if (!strcmp(m, "euid")) { printf("euid %d\n", (int)geteuid()); return 0; }
    if (!strcmp(m, "abstract-listen") && argc > 2) {
        struct sockaddr_un a; socklen_t len;
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || abstract_addr(argv[2], &a, &len)) return setup_fail("socket");
        if (bind(fd, (struct sockaddr *)&a, len) || listen(fd, 8)) return setup_fail("bind");
        printf("ready\n");
        alarm(60);
        /* MSG_NOSIGNAL: a client that already left must not kill us. */
        for (;;) { int c = accept(fd, NULL, NULL); if (c >= 0) { send(c, "hello\n", 6, MSG_NOSIGNAL); close(c); } }
    }
    if (!strcmp(m, "abstract-connect") && argc > 2) {
        struct sockaddr_un a; socklen_t len;
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || abstract_addr(argv[2], &a, &len)) return setup_fail("socket");
        return report(connect(fd, (struct sockaddr *)&a, len));
    }
    (void)pause_child;
    fprintf(stderr, "escape: unknown mode %s\n", m);
    return 64;
}
