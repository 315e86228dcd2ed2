/*
 * hammer: a closed-loop HTTP/1.1 keep-alive load generator for small requests, HEAD included.
 *
 * Why it exists: wrk 4.1 (Debian's) cannot parse a response to HEAD that carries Content-Length (it waits
 * for a body that never comes), and a registry's HEAD answers always carry one. This does one thing:
 * N connections on one thread with epoll, one request in flight per connection, latency of every
 * request into a 1 us histogram, and a final line in the same JSON shape as bench/loadgen/report.lua.
 *
 * usage: hammer HOST PORT CONNECTIONS SECONDS METHOD PATH ["Name: value" ...]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
#define HIST_US 2000000 /* latencies above 2 s are counted as 2 s */

struct conn {
    int fd;
    size_t sent, have, need; /* request bytes sent; response bytes buffered; total bytes of response */
    uint64_t start;
    char buf[BUF];
};

static char *request;
static size_t request_len;
static int is_head;
static struct sockaddr_in addr;
static uint32_t *hist;
static uint64_t requests, bytes_read, errs_connect, errs_read, errs_write, errs_status, lat_sum, lat_max;

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int open_conn(int ep, struct conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        errs_connect++;
        return -1;
    }
    c->sent = c->have = c->need = 0;
    c->start = now_us();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void reopen(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    open_conn(ep, c);
}

static void try_send(int ep, struct conn *c) {
    while (c->sent < request_len) {
        ssize_t n = write(c->fd, request + c->sent, request_len - c->sent);
        if (n < 0) {
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                return;
            }
            errs_write++;
            reopen(ep, c);
            return;
        }
        c->sent += (size_t)n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Length of the whole response once its headers are in, 0 while they are not, (size_t)-1 if unusable. */
static size_t response_length(struct conn *c, int *status, int *closing) {
    char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    if (!end) return c->have >= BUF ? (size_t)-1 : 0;
    size_t head = (size_t)(end - c->buf) + 4;
    *status = atoi(c->buf + 9);
    size_t body = 0;
    for (char *line = memchr(c->buf, '\n', head); line && line < end; line = memchr(line + 1, '\n', end - line)) {
        if (!strncasecmp(line + 1, "content-length:", 15)) body = strtoull(line + 16, NULL, 10);
        else if (!strncasecmp(line + 1, "connection: close", 17)) *closing = 1;
        else if (!strncasecmp(line + 1, "transfer-encoding:", 18)) return (size_t)-1;
    }
    if (is_head || *status == 204 || *status == 304) body = 0;
    return head + body;
}

static void on_readable(int ep, struct conn *c) {
    for (;;) {
        size_t off = c->have < BUF ? c->have : 0; /* past the buffer, body bytes are only counted */
        ssize_t n = read(c->fd, c->buf + off, BUF - off);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            errs_read++;
            reopen(ep, c);
            return;
        }
        if (n < 0) return;
        bytes_read += (uint64_t)n;
        if (c->need == 0) {
            c->have += (size_t)n;
            int status = 0, closing = 0;
            size_t total = response_length(c, &status, &closing);
            if (total == (size_t)-1) { errs_read++; reopen(ep, c); return; }
            if (total == 0) continue;
            c->need = total;
            if (status < 200 || status > 399) errs_status++;
            if (closing) c->need |= (size_t)1 << 62;
        } else {
            c->have += (size_t)n;
        }
        size_t need = c->need & ~((size_t)1 << 62);
        if (c->have >= need) {
            uint64_t lat = now_us() - c->start;
            hist[lat < HIST_US ? lat : HIST_US - 1]++;
            lat_sum += lat;
            if (lat > lat_max) lat_max = lat;
            requests++;
            int closing = (c->need >> 62) & 1;
            if (closing) { reopen(ep, c); return; }
            c->sent = c->have = c->need = 0;
            c->start = now_us();
            try_send(ep, c);
            return;
        }
    }
}

static uint64_t percentile(double p) {
    uint64_t rank = (uint64_t)(p * (double)requests), seen = 0;
    for (uint64_t i = 0; i < HIST_US; i++) {
        seen += hist[i];
        if (seen > rank) return i;
    }
    return HIST_US;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT CONNECTIONS SECONDS METHOD PATH [HEADER...]\n", argv[0]);
        return 2;
    }
    int conns = atoi(argv[3]);
    double seconds = atof(argv[4]);
    is_head = !strcmp(argv[5], "HEAD");
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "bad IPv4 address\n"); return 2; }
    size_t cap = 4096;
    for (int i = 7; i < argc; i++) cap += strlen(argv[i]) + 2;
    request = malloc(cap + strlen(argv[6]));
    int len = sprintf(request, "%s %s HTTP/1.1\r\nHost: %s:%s\r\n", argv[5], argv[6], argv[1], argv[2]);
    for (int i = 7; i < argc; i++) len += sprintf(request + len, "%s\r\n", argv[i]);
    len += sprintf(request + len, "\r\n");
    request_len = (size_t)len;
    hist = calloc(HIST_US, sizeof *hist);
    struct conn *pool = calloc((size_t)conns, sizeof *pool);
    int ep = epoll_create1(0);
    for (int i = 0; i < conns; i++) open_conn(ep, &pool[i]);
    struct epoll_event events[256];
    uint64_t t0 = now_us(), deadline = t0 + (uint64_t)(seconds * 1e6);
    while (now_us() < deadline) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (events[i].events & (EPOLLERR | EPOLLHUP) && !(events[i].events & EPOLLIN)) {
                errs_connect++;
                reopen(ep, c);
            } else if (events[i].events & EPOLLOUT) {
                try_send(ep, c);
            } else if (events[i].events & EPOLLIN) {
                on_readable(ep, c);
            }
        }
    }
    uint64_t duration = now_us() - t0;
    printf("BENCH_JSON {\"requests\":%llu,\"duration_us\":%llu,\"bytes\":%llu,\"connect_errors\":%llu,"
           "\"read_errors\":%llu,\"write_errors\":%llu,\"status_errors\":%llu,\"timeouts\":0,\"p50_us\":%llu,"
           "\"p90_us\":%llu,\"p99_us\":%llu,\"max_us\":%llu,\"mean_us\":%.1f}\n",
           (unsigned long long)requests, (unsigned long long)duration, (unsigned long long)bytes_read,
           (unsigned long long)errs_connect, (unsigned long long)errs_read, (unsigned long long)errs_write,
           (unsigned long long)errs_status, (unsigned long long)percentile(0.5), (unsigned long long)percentile(0.9),
           (unsigned long long)percentile(0.99), (unsigned long long)lat_max,
           requests ? (double)lat_sum / (double)requests : 0.0);
    return 0;
}
