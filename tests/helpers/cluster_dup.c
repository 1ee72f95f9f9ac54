/* A program interrupted by signals while its sends are performed by the
 * cluster-network supervisor: sendmsg on a connected TCP socket while
 * SIGALRM (SA_RESTART) keeps interrupting; counts the bytes it was told
 * were sent and the bytes that arrived. usage: cluster_dup NODE_IP */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
static void h(int s) { (void)s; }
static int a;
static volatile long got;
static void *reader(void *x) {
    (void)x;
    char b[65536];
    for (;;) {
        usleep(2000);
        ssize_t n = read(a, b, sizeof b);
        if (n <= 0) break;
        got += n;
    }
    return NULL;
}
int main(int argc, char **argv) {
    struct sockaddr_in s = {.sin_family = AF_INET};
    inet_pton(AF_INET, argv[1], &s.sin_addr);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t sl = sizeof s;
    bind(l, (void *)&s, sizeof s);
    listen(l, 1);
    getsockname(l, (void *)&s, &sl);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (void *)&s, sizeof s)) { perror("connect"); return 1; }
    a = accept(l, NULL, NULL);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    struct sigaction sa = {.sa_handler = h, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 3000}, {0, 3000}};
    setitimer(ITIMER_REAL, &it, NULL);
    static char buf[65536];
    long sent = 0, eintr = 0;
    for (int i = 0; i < 200; i++) {
        struct iovec v = {buf, sizeof buf};
        struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
        ssize_t n = sendmsg(c, &m, 0);
        if (n > 0) sent += n; else if (errno == EINTR) eintr++;
    }
    struct itimerval z = {0};
    setitimer(ITIMER_REAL, &z, NULL);
    shutdown(c, SHUT_WR);
    pthread_join(t, NULL);
    printf("told sent=%ld arrived=%ld eintr=%ld %s\n", sent, got, eintr, got == sent ? "same" : "DIFFERENT");
    return 0;
}
