/*
 * A resolver hook for tests (LD_PRELOAD): names listed in the hosts-format file $RS_TEST_HOSTS
 * resolve to the addresses given there, in file order; every other name goes to the C library.
 * test_happy_eyeballs.sh uses it where it cannot give itself a private /etc/hosts (a chroot,
 * where `unshare -m` cannot make the root private), to make a name resolve to ::1 first.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
  static gai_fn real;
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
  const char *path = getenv("RS_TEST_HOSTS");
  FILE *f = node && path ? fopen(path, "r") : NULL;
  if (!f) return real(node, service, hints, res);
  struct addrinfo *head = NULL, **tail = &head;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char *save = NULL, *addr = strtok_r(line, " \t\r\n", &save);
    if (!addr || addr[0] == '#') continue;
    for (char *name; (name = strtok_r(NULL, " \t\r\n", &save)) != NULL;) {
      if (strcasecmp(name, node) != 0) continue;
      struct addrinfo h = {0};
      if (hints) h = *hints;
      h.ai_flags = (h.ai_flags | AI_NUMERICHOST) & ~AI_CANONNAME;
      struct addrinfo *r = NULL;
      if (real(addr, service, &h, &r) == 0) { /* another family than asked for is skipped */
        *tail = r;
        while (*tail) tail = &(*tail)->ai_next;
      }
    }
  }
  fclose(f);
  if (!head) return real(node, service, hints, res);
  *res = head; /* glibc frees each node on its own, so the joined lists free as one */
  return 0;
}
