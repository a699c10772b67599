/* sigdefault.c: what a program sees of the trigger signal (SIGUSR2) that the shim holds.
 *   sigdefault reset    sets SIGUSR2 to SIG_DFL (sigaction, then signal()), asks what it is,
 *                       then raises it: under the shim a snapshot, natively the end
 *   sigdefault handler  installs a handler of its own, prints what the old action was, then
 *                       raises SIGUSR2, which its handler must get
 *   sigdefault vfork    a vfork child ignores SIGUSR2 and execs true; the parent asks what
 *                       SIGUSR2 is, then raises it (the child's change is the child's)
 * Prints one line per step. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_usr2(int sig)
{
    (void)sig;
    got = 1;
}

static const char *name(void (*h)(int))
{
    return h == SIG_DFL ? "SIG_DFL" : h == SIG_IGN ? "SIG_IGN" : h == on_usr2 ? "mine" : "another handler";
}

/* Print what SIGUSR2 is now (after `label`), then raise it: under the shim a snapshot. */
static int ask_then_raise(const char *label)
{
    struct sigaction now;
    sigaction(SIGUSR2, NULL, &now);
    printf("%s %s\n", label, name(now.sa_handler));
    fflush(stdout);
    raise(SIGUSR2);
    printf("alive\n");
    return 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    if (argc > 1 && !strcmp(argv[1], "handler")) {
        sa.sa_handler = on_usr2;
        sigaction(SIGUSR2, &sa, &old);
        printf("old %s\n", name(old.sa_handler));
        raise(SIGUSR2);
        printf("handler ran %d\n", (int)got);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "vfork")) {
        pid_t child = vfork();
        if (child == 0) {
            signal(SIGUSR2, SIG_IGN);
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        waitpid(child, NULL, 0);
        return ask_then_raise("parent sees");
    }
    sa.sa_handler = SIG_DFL;
    sigaction(SIGUSR2, &sa, &old);
    printf("old %s\n", name(old.sa_handler));
    printf("signal() returned %s\n", name(signal(SIGUSR2, SIG_DFL)));
    return ask_then_raise("now");
}
