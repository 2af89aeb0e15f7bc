/* faultapp: one tiny static program that misbehaves on request, for the fault matrix
 * (tests/test_faults_engine.py). Built there with `gcc -static -Os`; not shipped.
 *
 *   faultapp exit CODE      print "dying", exit with CODE at once
 *   faultapp serve PORT     answer every TCP connection with "ok\n"
 *   faultapp daemon PORT    double-fork; the grandchild serves, the first process exits 0
 *   faultapp stubborn PORT  ignore SIGTERM, SIGINT and SIGQUIT, then serve
 *   faultapp crash          raise SIGSEGV
 *   faultapp hog PORT       serve once memory is touched, 8 MiB more per connection
 *   faultapp sleep SECONDS [FILE]  read FILE (so it is kept), sleep, exit 0
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void serve(int port, int hog) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) {
        perror("listen");
        exit(2);
    }
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        if (hog) {
            for (;;) {  /* touch memory until the limit ends us */
                char *p = malloc(8 << 20);
                if (p) memset(p, 1, 8 << 20);
            }
        }
        (void)!write(c, "ok\n", 3);
        close(c);
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int arg = argc > 2 ? atoi(argv[2]) : 0;
    if (!strcmp(mode, "exit")) {
        puts("dying");
        fflush(stdout);
        return arg;
    }
    if (!strcmp(mode, "crash")) raise(SIGSEGV);
    if (!strcmp(mode, "sleep")) {
        if (argc > 3) close(open(argv[3], O_RDONLY));
        sleep((unsigned)arg);
        return 0;
    }
    if (!strcmp(mode, "daemon")) {
        if (fork() != 0) return 0;
        setsid();
        if (fork() != 0) return 0;
        serve(arg, 0);
    }
    if (!strcmp(mode, "stubborn")) {
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGQUIT, SIG_IGN);
    }
    if (!strcmp(mode, "serve") || !strcmp(mode, "stubborn")) serve(arg, 0);
    if (!strcmp(mode, "hog")) serve(arg, 1);
    fprintf(stderr, "faultapp: unknown mode %s\n", mode);
    return 64;
}
