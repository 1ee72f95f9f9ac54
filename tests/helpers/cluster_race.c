/* The TOCTOU attack on the connect supervisor: a thread flips a shared
 * sockaddr between an allowed and a denied address while the main thread
 * connects (non-blocking, TCP), sends UDP datagrams with sendto, and with
 * sendmsg, all naming that sockaddr. Prints how often the peer it got was
 * the denied one ("escaped"); the denied side also counts what arrived.
 * usage: cluster_race ALLOWED_IP PORT DENIED_IP PORT ROUNDS
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

int main(int argc, char **argv) {
    if (argc != 6) return 2;
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
    memcpy(&shared, &ok, sizeof ok);
    pthread_t t;
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
    printf("allowed=%d escaped=%d refused=%d other=%d sent=%d\n", allowed, escaped, refused, other, sent);
    return 0;
}
