/* The TOCTOU attack on the connect supervisor: a thread flips a shared
 * sockaddr between an allowed and a denied address while the main thread
 * connects (non-blocking, TCP), sends UDP datagrams with sendto, and with
 * sendmsg, all naming that sockaddr. Prints how often the peer it got was
 * the denied one ("escaped"); the denied side also counts what arrived.
 * Then the fd race: another thread dup2()s an inet socket and a unix socket
 * in turn onto the fd number the main thread connects, while flipping the
 * address between a unix path (./race.sock, listened on here) and the
 * denied inet address: a supervisor that checked "a unix socket" and let
 * the kernel run the call would connect the inet socket to the denied one.
 * usage: cluster_race ALLOWED_IP PORT DENIED_IP PORT ROUNDS PORT2
 * (PORT2: the denied port of the fd race)
 * (tests/slurm.rs, under_cluster_networks_a_racing_thread_...) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_in ok, bad;
static struct sockaddr_in shared;
static volatile int stop;

static void *flipper(void *arg) {
    /* volatile: every store happens, none is merged away. */
    volatile struct sockaddr_in *p = &shared;
    (void)arg;
    while (!stop) {
        p->sin_addr.s_addr = ok.sin_addr.s_addr;
        p->sin_port = ok.sin_port;
        p->sin_addr.s_addr = bad.sin_addr.s_addr;
        p->sin_port = bad.sin_port;
    }
    return NULL;
}

#define SLOT 100
static union {
    struct sockaddr_un un;
    struct sockaddr_in in;
} target;
static struct sockaddr_un path;
static volatile int cur_unix = -1, cur_inet = -1;

static void *swapper(void *arg) {
    volatile unsigned char *t = (volatile unsigned char *)&target;
    (void)arg;
    while (!stop) {
        /* Each state held a while, so the kernel's own read (fd, then
         * address) often sees the inet one whole. */
        dup2(cur_inet, SLOT);
        for (size_t i = 0; i < sizeof bad; i++) t[i] = ((unsigned char *)&bad)[i];
        for (volatile int k = 0; k < 2000; k++) {}
        dup2(cur_unix, SLOT);
        for (size_t i = 0; i < sizeof path; i++) t[i] = ((unsigned char *)&path)[i];
        for (volatile int k = 0; k < 2000; k++) {}
    }
    return NULL;
}

static int fd_race(int rounds) {
    path.sun_family = AF_UNIX;
    strcpy(path.sun_path, "race.sock");
    unlink("race.sock");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(l, (void *)&path, sizeof path) || listen(l, 4096)) {
        perror("unix listen");
        return 2;
    }
    fcntl(l, F_SETFL, O_NONBLOCK);
    memcpy(&target, &path, sizeof path);
    stop = 0;
    pthread_t t;
    int escaped = 0, unix_ok = 0, other = 0;
    for (int i = 0; i < rounds; i++) {
        int u = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int n = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        cur_unix = u;
        cur_inet = n;
        /* Only the swapper sets the slot after the first round: on one
         * CPU (a task bound by Slurm) a dup2 of ours here would decide. */
        if (i == 0) {
            dup2(u, SLOT);
            pthread_create(&t, NULL, swapper, NULL);
        }
        int rc = connect(SLOT, (struct sockaddr *)&target, sizeof path);
        (void)rc;
        struct pollfd p = {n, POLLOUT, 0};
        poll(&p, 1, 200);
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int err = 0;
        socklen_t elen = sizeof err;
        getsockopt(n, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (!err && getpeername(n, (void *)&peer, &len) == 0) escaped++;
        else if (getpeername(u, (void *)&peer, &len) == 0) unix_ok++;
        else other++;
        int a;
        while ((a = accept(l, NULL, NULL)) >= 0) close(a);
        cur_unix = cur_inet = -1;
        close(u);
        close(n);
    }
    stop = 1;
    pthread_join(t, NULL);
    unlink("race.sock");
    printf("fd-race unix=%d escaped=%d other=%d\n", unix_ok, escaped, other);
    return 0;
}

/* A connect from a thread other than the main one (its own pidfd). */
static void *thread_connect(void *arg) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int rc = connect(s, (struct sockaddr *)&ok, sizeof ok);
    *(int *)arg = rc == 0 ? 1 : -errno;
    close(s);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 7) return 2;
    ok.sin_family = bad.sin_family = AF_INET;
    inet_pton(AF_INET, argv[1], &ok.sin_addr);
    ok.sin_port = htons(atoi(argv[2]));
    inet_pton(AF_INET, argv[3], &bad.sin_addr);
    bad.sin_port = htons(atoi(argv[4]));
    int rounds = atoi(argv[5]);
    /* The allowed side: a listener of our own on this node. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in any = ok;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(l, (void *)&any, sizeof any) || listen(l, 4096)) {
        perror("listen");
        return 2;
    }
    fcntl(l, F_SETFL, O_NONBLOCK);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    bind(u, (void *)&any, sizeof any);
    int threaded = 0;
    pthread_t t;
    pthread_create(&t, NULL, thread_connect, &threaded);
    pthread_join(t, NULL);
    memcpy(&shared, &ok, sizeof ok);
    pthread_create(&t, NULL, flipper, NULL);
    int allowed = 0, escaped = 0, refused = 0, other = 0, sent = 0;
    for (int i = 0; i < rounds; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int rc = connect(s, (struct sockaddr *)&shared, sizeof shared);
        if (rc == 0 || errno == EINPROGRESS) {
            struct pollfd p = {s, POLLOUT, 0};
            poll(&p, 1, 2000);
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            int err = 0;
            socklen_t elen = sizeof err;
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen);
            if (!err && getpeername(s, (void *)&peer, &len) == 0) {
                if (peer.sin_addr.s_addr == bad.sin_addr.s_addr) escaped++;
                else allowed++;
            } else other++;
        } else if (errno == EACCES) refused++;
        else other++;
        close(s);
        int a;
        while ((a = accept(l, NULL, NULL)) >= 0) close(a);
        /* UDP: sendto and sendmsg naming the flipping address. */
        if (sendto(u, "x", 1, 0, (struct sockaddr *)&shared, sizeof shared) == 1) sent++;
        struct iovec iov = {"y", 1};
        struct msghdr m = {0};
        m.msg_name = &shared;
        m.msg_namelen = sizeof shared;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        if (sendmsg(u, &m, 0) == 1) sent++;
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("allowed=%d escaped=%d refused=%d other=%d sent=%d thread=%d\n", allowed, escaped, refused,
           other, sent, threaded);
    fflush(stdout);
    bad.sin_port = htons(atoi(argv[6]));
    return fd_race(rounds);
}
