/*
 * mfrepro: run a migfuzz reproducer on a real kernel, inside the guest.
 *
 * It reads a program spec written by kernels/translate.py (plain text, one directive a
 * line, addresses in guest pages from a fixed 2 MiB-aligned base) and runs it:
 *
 *   mfrepro SPEC [-i ITERATIONS] [-r REPEATS] [-m race|serial] [-s SEED] [-j JITTER]
 *                [-t TIMEOUT_S] [-v] [-e "HOLD_SITE UNTIL_SITE TIMEOUT_MS"]
 *
 * -e (enforced mode) needs a kernel instrumented by kernels/patches/apply_mf_sched.py: before
 * each repetition's actors start, the plan is armed in /sys/kernel/debug/mf_sched for this
 * process, so the first of its tasks to reach HOLD_SITE waits there until another passes
 * UNTIL_SITE: the model's decisive preemption, forced.
 *
 * Each iteration repeats the pattern REPEATS times: map the vmas, lay the pages out
 * (faults, MADV_HUGEPAGE for a THP, migrations to the device through /dev/hmm_dmirrorN),
 * record the PFNs of every page (/proc/self/pagemap), then run the actors: one thread
 * each, released together (race) or one after the other (serial: the control). Then the
 * data checks, PFNs again, munmap, and each recorded PFN's state from /proc/kpageflags and
 * /proc/kpagecount: a page still alive (anon, or a THP head) that nobody maps any more is a
 * suspect; at the end of the iteration the LRU add batches are drained (compact_memory)
 * and the suspects re-checked: those still there are leaked. Results go to stdout (the
 * serial console) as "MIGFUZZ {json}" lines that kernels/repro.py parses.
 *
 * An op line ending in "@N" runs in the mm of forked child N: the actor that ran "fork N"
 * left a child process that serves such ops one at a time (with its own dmirror opens, the
 * driver mirrors the opener's mm) until the repeat ends; before the fork they are skipped.
 *
 * Exit status: 0 ran to the end, 2 bad spec or no device, 3 an actor hung (timeout).
 *
 * The dmirror ioctl interface (lib/test_hmm_uapi.h, identical in 6.1 and 6.12) is
 * re-declared here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the dmirror user interface, re-declared ---- */
struct mf_dmirror_cmd {
	uint64_t addr;
	uint64_t ptr;
	uint64_t npages;
	uint64_t cpages;
	uint64_t faults;
};
#define MF_IOWR(nr) _IOWR('H', (nr), struct mf_dmirror_cmd)
#define MF_MIGRATE_TO_DEV MF_IOWR(0x02)
#define MF_MIGRATE_TO_SYS MF_IOWR(0x03)
#define MF_RELEASE MF_IOWR(0x07)

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096UL
#define BASE 0x100000000000UL /* 16 TiB: 2 MiB aligned, far from everything else */
#define HPAGE_PAGES 512UL

#define KPF_ANON (1ULL << 12)
#define KPF_COMPOUND_HEAD (1ULL << 15)
#define KPF_COMPOUND_TAIL (1ULL << 16)
#define KPF_BUDDY (1ULL << 10)
#define KPF_THP (1ULL << 22)

#define MAX_VMAS 16
#define MAX_LAYOUT 64
#define MAX_ACTORS 16
#define MAX_OPS 64
#define MAX_CHECKS 4096
#define MAX_DEVS 2
#define MAX_SUSPECTS 65536
#define MAX_FORKS 8

enum op_kind { OP_MIGRATE, OP_TOSYS, OP_EVICT, OP_READ, OP_WRITE, OP_ZAP, OP_FORK,
	       OP_COMPACT };
static const char *op_names[] = { "migrate", "tosys", "evict", "read", "write", "zap",
				  "fork", "compact" };

struct vma { unsigned long start, npages; int prot, shared, thp; };
struct lay { unsigned long start, npages; char state[16]; uint64_t value; int dev; };
struct op { int kind; unsigned long start, npages; uint64_t value; int repeat, dev, child,
		    value_id; };
struct actor {
	char name[64];
	int nops;
	struct op ops[MAX_OPS];
	int fd[MAX_DEVS];
	pthread_t th;
	volatile int done;
	unsigned long jitter;
	int cur;            /* the op running now, for a hang report */
};
struct check { unsigned long start, npages; uint64_t value; };

static struct vma vmas[MAX_VMAS];
static int nvmas;
static struct lay lays[MAX_LAYOUT];
static int nlays;
static struct actor actors[MAX_ACTORS];
static int nactors;
static struct check checks[MAX_CHECKS];
static int nchecks;
static int ndevs_used;
static int setup_fd[MAX_DEVS];

static int pagemap_fd = -1, kflags_fd = -1, kcount_fd = -1;
static volatile int go_gen;
static volatile int ready;

/* per-iteration counters, written by actor threads with atomics */
static long ioctl_errs[4];  /* ENOENT, EBUSY, EINVAL, other */
static long migrated_pages;
static long lost_writes;
static long thp_missing, thp_formed;

/* forked children, by the spec's child id: each serves the ops that run in its mm */
struct child {
	pid_t pid;
	int req, ack;               /* parent's ends: requests out, acks in */
	pthread_mutex_t lock;       /* one request at a time */
};
static struct child forks[MAX_FORKS];

static int verbose;
static char enforce_plan[160];  /* -e "HOLD UNTIL MS": a schedule point plan (mf_sched) */
#define MF_SCHED "/sys/kernel/debug/mf_sched"

static void out(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* one write per line: lines of concurrent threads never interleave */
	if (write(1, buf, n) < 0)
		return;
}

static void die(int code, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	out("MIGFUZZ {\"mfr\":\"error\",\"msg\":\"%s\"}", buf);
	exit(code);
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int prot_of(const char *s)
{
	if (!strcmp(s, "rw"))
		return PROT_READ | PROT_WRITE;
	if (!strcmp(s, "r"))
		return PROT_READ;
	if (!strcmp(s, "none"))
		return PROT_NONE;
	return -1;
}

static int op_of(const char *s)
{
	for (unsigned i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (!strcmp(s, op_names[i]))
			return i;
	return -1;
}

static void parse(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512], w[64], s2[64];
	int lineno = 0;
	struct actor *cur = NULL;

	if (!f)
		die(2, "cannot open spec %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		unsigned long long v;
		int c;

		lineno++;
		if (line[0] == '#' || line[0] == '\n' || sscanf(line, "%63s", w) != 1)
			continue;
		if (!strcmp(w, "mfrepro") || !strcmp(w, "name") || !strcmp(w, "kind"))
			continue;
		if (!strcmp(w, "vma")) {
			char p[16], sh[16];
			if (nvmas == MAX_VMAS ||
			    sscanf(line, "vma %lu %lu %15s %15s %d", &a, &b, p, sh, &c) != 5 ||
			    prot_of(p) < 0)
				die(2, "spec line %d: bad vma", lineno);
			vmas[nvmas++] = (struct vma){ a, b, prot_of(p), !strcmp(sh, "shared"), c };
		} else if (!strcmp(w, "layout")) {
			struct lay *l = &lays[nlays];
			if (nlays == MAX_LAYOUT ||
			    sscanf(line, "layout %lu %lu %15s %llu %d", &l->start, &l->npages,
				   l->state, &v, &l->dev) != 5 || l->dev >= MAX_DEVS)
				die(2, "spec line %d: bad layout", lineno);
			l->value = v;
			if (!strcmp(l->state, "device") && l->dev + 1 > ndevs_used)
				ndevs_used = l->dev + 1;
			nlays++;
		} else if (!strcmp(w, "actor")) {
			if (nactors == MAX_ACTORS || sscanf(line, "actor %63s", s2) != 1)
				die(2, "spec line %d: bad actor", lineno);
			cur = &actors[nactors++];
			snprintf(cur->name, sizeof(cur->name), "%s", s2);
		} else if (!strcmp(w, "check")) {
			struct check *k = &checks[nchecks];
			if (nchecks == MAX_CHECKS ||
			    sscanf(line, "check %lu %lu %llu", &k->start, &k->npages, &v) != 3)
				die(2, "spec line %d: bad check", lineno);
			k->value = v;
			nchecks++;
		} else if (op_of(w) >= 0) {
			struct op *o;
			if (!cur || cur->nops == MAX_OPS)
				die(2, "spec line %d: op outside an actor", lineno);
			o = &cur->ops[cur->nops];
			memset(o, 0, sizeof(*o));
			o->kind = op_of(w);
			o->repeat = 1;
			switch (o->kind) {
			case OP_MIGRATE:
			case OP_TOSYS:
				if (sscanf(line, "%*s %lu %lu %d", &o->start, &o->npages, &o->dev) != 3)
					die(2, "spec line %d: bad %s", lineno, w);
				break;
			case OP_EVICT:
				if (sscanf(line, "%*s %d", &o->dev) != 1)
					die(2, "spec line %d: bad evict", lineno);
				break;
			case OP_READ:
				if (sscanf(line, "%*s %lu %lu %d", &o->start, &o->npages, &o->repeat) != 3)
					die(2, "spec line %d: bad read", lineno);
				break;
			case OP_WRITE:
				if (sscanf(line, "%*s %lu %lu %llu %d", &o->start, &o->npages, &v,
					   &o->repeat) != 4)
					die(2, "spec line %d: bad write", lineno);
				o->value = v;
				break;
			case OP_ZAP:
				if (sscanf(line, "%*s %lu %lu", &o->start, &o->npages) != 2)
					die(2, "spec line %d: bad zap", lineno);
				break;
			case OP_FORK:
				if (sscanf(line, "%*s %d", &o->value_id) != 1 ||
				    o->value_id < 1 || o->value_id >= MAX_FORKS)
					die(2, "spec line %d: bad fork", lineno);
				break;
			default:
				break;
			}
			if (strchr(line, '@')) {
				o->child = atoi(strchr(line, '@') + 1);
				if (o->child < 1 || o->child >= MAX_FORKS || o->kind == OP_FORK)
					die(2, "spec line %d: bad @child", lineno);
			}
			if (o->dev < 0 || o->dev >= MAX_DEVS)
				die(2, "spec line %d: device index out of range", lineno);
			if ((o->kind == OP_MIGRATE || o->kind == OP_TOSYS || o->kind == OP_EVICT) &&
			    o->dev + 1 > ndevs_used)
				ndevs_used = o->dev + 1;
			cur->nops++;
		} else {
			die(2, "spec line %d: unknown directive %s", lineno, w);
		}
	}
	fclose(f);
	if (!nvmas || !nactors)
		die(2, "spec has no vma or no actor");
}

static int open_dev(int dev)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", dev);
	fd = open(path, O_RDWR);
	if (fd < 0)
		die(2, "cannot open %s: %s", path, strerror(errno));
	return fd;
}

static inline void *addr_of(unsigned long page)
{
	return (void *)(BASE + page * PAGE);
}

static void count_err(int e)
{
	int i = e == ENOENT ? 0 : e == EBUSY ? 1 : e == EINVAL ? 2 : 3;
	__atomic_add_fetch(&ioctl_errs[i], 1, __ATOMIC_RELAXED);
}

static volatile int report_ops;   /* -v: each dmirror op's result, first repeat only */

static void dmirror(int fd, unsigned long req, unsigned long start, unsigned long npages,
		    const char *who)
{
	struct mf_dmirror_cmd cmd;
	void *bounce = malloc((npages ? npages : 1) * PAGE);
	int ret, err = 0;

	memset(&cmd, 0, sizeof(cmd));
	cmd.addr = (uint64_t)(uintptr_t)addr_of(start);
	cmd.ptr = (uint64_t)(uintptr_t)bounce;
	cmd.npages = npages;
	ret = ioctl(fd, req, &cmd);
	if (ret < 0) {
		err = errno;
		count_err(err);
	} else {
		__atomic_add_fetch(&migrated_pages, (long)cmd.cpages, __ATOMIC_RELAXED);
	}
	if (report_ops)
		out("MIGFUZZ {\"mfr\":\"op\",\"actor\":\"%s\",\"op\":\"%s\","
		    "\"start\":%lu,\"npages\":%lu,\"errno\":%d,\"cpages\":%" PRIu64 "}",
		    who, req == MF_MIGRATE_TO_DEV ? "migrate" : req == MF_MIGRATE_TO_SYS ?
		    "tosys" : "evict", start, npages, err, ret < 0 ? 0 : cmd.cpages);
	free(bounce);
}

static void run_op(struct actor *a, struct op *o, int *fds);

/* the child's loop: run each requested (actor, op) in this mm, then acknowledge */
static void child_serve(int req, int ack)
{
	int fds[MAX_DEVS] = { -1, -1 };
	int msg[2];
	char c = 1;

	for (;;) {
		ssize_t n = read(req, msg, sizeof(msg));

		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(msg))
			_exit(0);
		if (msg[0] < 0 || msg[0] >= nactors || msg[1] < 0 || msg[1] >= actors[msg[0]].nops)
			_exit(2);
		for (int d = 0; d < MAX_DEVS; d++)
			if (fds[d] < 0 && d < ndevs_used)
				fds[d] = open_dev(d);   /* a dmirror of the child's own mm */
		run_op(&actors[msg[0]], &actors[msg[0]].ops[msg[1]], fds);
		if (write(ack, &c, 1) != 1)
			_exit(2);
	}
}

static void do_fork(int id)
{
	int rq[2], ak[2];
	pid_t pid;

	if (id < 1 || id >= MAX_FORKS || forks[id].pid > 0 || pipe(rq) < 0)
		return;
	if (pipe(ak) < 0) {
		close(rq[0]);
		close(rq[1]);
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(rq[1]);
		close(ak[0]);
		child_serve(rq[0], ak[1]);
	}
	close(rq[0]);
	close(ak[1]);
	if (pid < 0) {
		close(rq[1]);
		close(ak[0]);
		return;
	}
	forks[id].req = rq[1];
	forks[id].ack = ak[0];
	__atomic_store_n(&forks[id].pid, pid, __ATOMIC_RELEASE);
}

/* an op in a child's mm: skipped when that child does not exist (yet), as in the model */
static void in_child(struct actor *a, struct op *o)
{
	struct child *c = &forks[o->child];
	int msg[2] = { (int)(a - actors), (int)(o - a->ops) };
	char r;

	if (__atomic_load_n(&c->pid, __ATOMIC_ACQUIRE) <= 0)
		return;
	pthread_mutex_lock(&c->lock);
	if (write(c->req, msg, sizeof(msg)) == sizeof(msg))
		while (read(c->ack, &r, 1) < 0 && errno == EINTR)
			;
	pthread_mutex_unlock(&c->lock);
}

static void reap_children(void)
{
	for (int i = 1; i < MAX_FORKS; i++) {
		if (forks[i].pid <= 0)
			continue;
		close(forks[i].req);
		close(forks[i].ack);
		waitpid(forks[i].pid, NULL, 0);
		forks[i].pid = 0;
	}
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		return;
	ssize_t n = write(fd, s, strlen(s));
	(void)n;
	close(fd);
}

static void run_op(struct actor *a, struct op *o, int *fds)
{
	switch (o->kind) {
	case OP_MIGRATE:
		dmirror(fds[o->dev], MF_MIGRATE_TO_DEV, o->start, o->npages, a->name);
		break;
	case OP_TOSYS:
		dmirror(fds[o->dev], MF_MIGRATE_TO_SYS, o->start, o->npages, a->name);
		break;
	case OP_EVICT:
		/* the ioctl checks addr/npages before it looks at the command: one page */
		dmirror(fds[o->dev], MF_RELEASE, 0, 1, a->name);
		break;
	case OP_READ:
		for (int r = 0; r < o->repeat; r++)
			for (unsigned long p = 0; p < o->npages; p++)
				(void)*(volatile uint64_t *)addr_of(o->start + p);
		break;
	case OP_WRITE:
		for (int r = 0; r < o->repeat; r++)
			for (unsigned long p = 0; p < o->npages; p++)
				*(volatile uint64_t *)addr_of(o->start + p) = o->value + p;
		break;
	case OP_ZAP:
		if (madvise(addr_of(o->start), o->npages * PAGE, MADV_DONTNEED) < 0)
			count_err(errno);
		break;
	case OP_FORK:
		do_fork(o->value_id);
		break;
	case OP_COMPACT:
		write_file("/proc/sys/vm/compact_memory", "1");
		break;
	}
}

static void *actor_main(void *arg)
{
	struct actor *a = arg;
	int gen = go_gen;

	__atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&go_gen, __ATOMIC_ACQUIRE) == gen)
		;
	for (volatile unsigned long s = 0; s < a->jitter; s++)
		;
	for (a->cur = 0; a->cur < a->nops; a->cur++) {
		struct op *o = &a->ops[a->cur];

		if (o->child)
			in_child(a, o);
		else
			run_op(a, o, a->fd);
	}
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* ---- page state ---- */
static uint64_t pread64_at(int fd, uint64_t index)
{
	uint64_t v = 0;

	if (pread(fd, &v, 8, (off_t)(index * 8)) != 8)
		return UINT64_MAX;
	return v;
}

/* where a page is, from its pagemap entry: R a page in RAM, Z the zero page, D a
 * device-private (swap-type) entry, S another swap-type entry, - nothing */
static char where_of(unsigned long page)
{
	uint64_t e = pread64_at(pagemap_fd, (BASE / PAGE) + page), f;

	if (e == UINT64_MAX)
		return '?';
	if (e & (1ULL << 63)) {
		f = pread64_at(kflags_fd, e & ((1ULL << 55) - 1));
		return (f != UINT64_MAX && (f & (1ULL << 24))) ? 'Z' : 'R';
	}
	if (e & (1ULL << 62))
		/* swap type in bits 0-4: device-private types sit above the real swap types */
		return (e & 0x1f) >= 24 ? 'D' : 'S';
	return '-';
}

static void report_where(const char *when)
{
	char buf[600];
	int n = 0;

	for (int v = 0; v < nvmas; v++)
		for (unsigned long p = 0; p < vmas[v].npages && n < (int)sizeof(buf) - 2; p++)
			buf[n++] = where_of(vmas[v].start + p);
	buf[n] = 0;
	out("MIGFUZZ {\"mfr\":\"where\",\"when\":\"%s\",\"pages\":\"%s\"}", when, buf);
}

static uint64_t pfn_of(unsigned long page)
{
	uint64_t e = pread64_at(pagemap_fd, (BASE / PAGE) + page);

	if (e == UINT64_MAX || !(e & (1ULL << 63)))
		return 0;
	return e & ((1ULL << 55) - 1);
}

static uint64_t *seen;        /* PFNs recorded in this repeat */
static unsigned long nseen, seen_cap;
static uint64_t leaked_all[MAX_SUSPECTS];  /* every confirmed leak of the run */
static unsigned long nleaked_all;
static uint64_t suspects[MAX_SUSPECTS];
static int suspect_thp[MAX_SUSPECTS];
static unsigned long nsuspects;

static void record_pfns(void)
{
	for (int v = 0; v < nvmas; v++)
		for (unsigned long p = 0; p < vmas[v].npages; p++) {
			uint64_t pfn = pfn_of(vmas[v].start + p);

			if (!pfn)
				continue;
			if (nseen == seen_cap) {
				seen_cap = seen_cap ? seen_cap * 2 : 4096;
				seen = realloc(seen, seen_cap * sizeof(*seen));
			}
			seen[nseen++] = pfn;
		}
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* alive and unmapped: 1 a THP head, 2 a small anon page, 0 otherwise (freed, tail...) */
static int orphan_kind(uint64_t pfn, uint64_t *flags_out)
{
	uint64_t f = pread64_at(kflags_fd, pfn), c = pread64_at(kcount_fd, pfn);

	if (flags_out)
		*flags_out = f;
	if (f == UINT64_MAX || c != 0)
		return 0;
	if ((f & KPF_THP) && (f & KPF_COMPOUND_HEAD))
		return 1;
	if ((f & KPF_ANON) && !(f & (KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL | KPF_BUDDY)))
		return 2;
	return 0;
}

static void add_suspect(uint64_t pfn, int thp)
{
	for (unsigned long i = 0; i < nsuspects; i++)
		if (suspects[i] == pfn)
			return;
	if (nsuspects < MAX_SUSPECTS) {
		suspects[nsuspects] = pfn;
		suspect_thp[nsuspects++] = thp;
	}
}

static void judge_repeat(int iter, int rep)
{
	qsort(seen, nseen, sizeof(*seen), cmp_u64);
	for (unsigned long i = 0; i < nseen; i++) {
		uint64_t flags;
		int k;

		if (i && seen[i] == seen[i - 1])
			continue;
		k = orphan_kind(seen[i], &flags);
		if (k) {
			add_suspect(seen[i], k == 1);
			if (verbose)
				out("MIGFUZZ {\"mfr\":\"suspect\",\"i\":%d,\"rep\":%d,\"pfn\":\"0x%" PRIx64
				    "\",\"flags\":\"0x%" PRIx64 "\",\"kind\":\"%s\"}", iter, rep,
				    seen[i], flags, k == 1 ? "thp" : "page");
		}
	}
	nseen = 0;
}

static long memfree_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemFree: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* a few /proc/meminfo fields, as one structured line (where MemFree went) */
static void report_meminfo(const char *when)
{
	static const char *keys[] = { "MemFree", "AnonPages", "AnonHugePages", "Slab",
				      "SUnreclaim", "PageTables", "KernelStack", "Unevictable" };
	char line[256], buf[600];
	int n = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return;
	n += snprintf(buf + n, sizeof(buf) - n, "{\"mfr\":\"meminfo\",\"when\":\"%s\"", when);
	while (fgets(line, sizeof(line), f)) {
		char key[64];
		long v;

		if (sscanf(line, "%63[^:]: %ld", key, &v) != 2)
			continue;
		for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!strcmp(key, keys[i]) && n < (int)sizeof(buf) - 40)
				n += snprintf(buf + n, sizeof(buf) - n, ",\"%s_kb\":%ld", key, v);
	}
	fclose(f);
	out("MIGFUZZ %s}", buf);
}

/* ---- one repeat ---- */
static void map_all(void)
{
	for (int v = 0; v < nvmas; v++) {
		void *want = addr_of(vmas[v].start);
		int flags = (vmas[v].shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS |
			    MAP_FIXED_NOREPLACE;
		void *p = mmap(want, vmas[v].npages * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0);

		if (p != want)
			die(2, "mmap of vma %d at %p failed: %s", v, want, strerror(errno));
		madvise(p, vmas[v].npages * PAGE, vmas[v].thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	}
}

static void lay_out(void)
{
	for (int l = 0; l < nlays; l++) {
		struct lay *e = &lays[l];

		if (!strcmp(e->state, "none"))
			continue;
		if (!strcmp(e->state, "zero")) {
			for (unsigned long p = 0; p < e->npages; p++)
				(void)*(volatile uint64_t *)addr_of(e->start + p);
			continue;
		}
		for (unsigned long p = 0; p < e->npages; p++)
			*(volatile uint64_t *)addr_of(e->start + p) = e->value + p;
		if (!strcmp(e->state, "thp")) {
			uint64_t pfn = pfn_of(e->start), f = pfn ? pread64_at(kflags_fd, pfn) : 0;

			if (pfn && (f & KPF_THP) && (f & KPF_COMPOUND_HEAD))
				thp_formed++;
			else
				thp_missing++;
		} else if (!strcmp(e->state, "device")) {
			dmirror(setup_fd[e->dev], MF_MIGRATE_TO_DEV, e->start, e->npages, "layout");
		}
	}
	for (int v = 0; v < nvmas; v++)
		if (vmas[v].prot != (PROT_READ | PROT_WRITE))
			mprotect(addr_of(vmas[v].start), vmas[v].npages * PAGE, vmas[v].prot);
}

static void data_checks(void)
{
	for (int c = 0; c < nchecks; c++)
		for (unsigned long p = 0; p < checks[c].npages; p++) {
			uint64_t want = checks[c].value ? checks[c].value + p : 0;
			uint64_t got = *(volatile uint64_t *)addr_of(checks[c].start + p);

			if (got != want) {
				if (lost_writes < 4)
					out("MIGFUZZ {\"mfr\":\"lostwrite\",\"page\":%lu,\"want\":%" PRIu64
					    ",\"got\":%" PRIu64 "}",
					    checks[c].start + p, want, got);
				lost_writes++;
			}
		}
}

static void hang_report(int iter, int rep)
{
	for (int a = 0; a < nactors; a++)
		if (!__atomic_load_n(&actors[a].done, __ATOMIC_ACQUIRE)) {
			int cur = actors[a].cur;
			out("MIGFUZZ {\"mfr\":\"hang\",\"i\":%d,\"rep\":%d,\"actor\":\"%s\","
			    "\"op\":\"%s\"}", iter, rep, actors[a].name,
			    cur < actors[a].nops ? op_names[actors[a].ops[cur].kind] : "-");
		}
	write_file("/proc/sysrq-trigger", "w");   /* blocked tasks with their stacks */
	sleep(1);
	out("MIGFUZZ {\"mfr\":\"end\",\"status\":\"hang\"}");
	_exit(3);
}

static void wait_actor(struct actor *a, time_t deadline, int iter, int rep)
{
	struct timespec ts = { deadline, 0 };

	if (pthread_timedjoin_np(a->th, NULL, &ts) != 0)
		hang_report(iter, rep);
}

static void start_actor(struct actor *a)
{
	a->done = 0;
	a->cur = 0;
	if (pthread_create(&a->th, NULL, actor_main, a) != 0)
		die(2, "pthread_create failed");
}

static void run_repeat(int iter, int rep, int race, unsigned long jitter, int timeout)
{
	time_t deadline = time(NULL) + timeout;

	report_ops = verbose && iter == 0 && rep == 0;
	map_all();
	lay_out();
	record_pfns();
	for (int a = 0; a < nactors; a++)
		actors[a].jitter = jitter ? rnd() % jitter : 0;
	if (enforce_plan[0]) {
		char plan[200];

		snprintf(plan, sizeof(plan), "%d %s", (int)getpid(), enforce_plan);
		write_file(MF_SCHED, plan);
	}
	if (race) {
		int gen = go_gen;

		ready = 0;
		for (int a = 0; a < nactors; a++)
			start_actor(&actors[a]);
		while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < nactors)
			sched_yield();
		__atomic_store_n(&go_gen, gen + 1, __ATOMIC_RELEASE);
		for (int a = 0; a < nactors; a++)
			wait_actor(&actors[a], deadline, iter, rep);
	} else {
		for (int a = 0; a < nactors; a++) {
			int gen = go_gen;

			ready = 0;
			start_actor(&actors[a]);
			while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < 1)
				sched_yield();
			__atomic_store_n(&go_gen, gen + 1, __ATOMIC_RELEASE);
			wait_actor(&actors[a], deadline, iter, rep);
		}
	}
	if (enforce_plan[0])
		write_file(MF_SCHED, "0");
	if (report_ops)
		report_where("after");
	data_checks();
	record_pfns();
	for (int v = 0; v < nvmas; v++)
		munmap(addr_of(vmas[v].start), vmas[v].npages * PAGE);
	reap_children();
	judge_repeat(iter, rep);
}

int main(int argc, char **argv)
{
	int iterations = 1, repeats = 1, race = 1, timeout = 60, opt;
	unsigned long jitter = 0;
	const char *spec;

	while ((opt = getopt(argc, argv, "i:r:m:s:j:t:ve:")) != -1) {
		switch (opt) {
		case 'i': iterations = atoi(optarg); break;
		case 'r': repeats = atoi(optarg); break;
		case 'm': race = strcmp(optarg, "serial") != 0; break;
		case 's': rng_state ^= strtoull(optarg, NULL, 0) * 0x9E3779B97F4A7C15ULL; break;
		case 'j': jitter = strtoul(optarg, NULL, 0); break;
		case 't': timeout = atoi(optarg); break;
		case 'v': verbose = 1; break;
		case 'e': snprintf(enforce_plan, sizeof(enforce_plan), "%s", optarg); break;
		default:
			die(2, "usage: mfrepro SPEC [-i N] [-r R] [-m race|serial] [-s SEED] "
			       "[-j JITTER] [-t TIMEOUT] [-v]");
		}
	}
	if (optind >= argc)
		die(2, "usage: mfrepro SPEC [-i N] [-r R] [-m race|serial] ...");
	spec = argv[optind];
	setvbuf(stdout, NULL, _IONBF, 0);
	parse(spec);
	for (int i = 0; i < MAX_FORKS; i++)
		pthread_mutex_init(&forks[i].lock, NULL);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	kflags_fd = open("/proc/kpageflags", O_RDONLY);
	kcount_fd = open("/proc/kpagecount", O_RDONLY);
	if (enforce_plan[0] && access(MF_SCHED, W_OK) != 0)
		die(2, "-e needs a kernel with migfuzz schedule points (%s)", MF_SCHED);
	if (pagemap_fd < 0 || kflags_fd < 0 || kcount_fd < 0)
		die(2, "cannot open pagemap/kpageflags/kpagecount (root and CONFIG_PROC_PAGE_MONITOR)");
	for (int d = 0; d < ndevs_used; d++) {
		setup_fd[d] = open_dev(d);
		for (int a = 0; a < nactors; a++)
			actors[a].fd[d] = open_dev(d);
	}
	write_file("/sys/kernel/mm/transparent_hugepage/enabled", "madvise");
	out("MIGFUZZ {\"mfr\":\"start\",\"mode\":\"%s\",\"iterations\":%d,"
	    "\"repeats\":%d,\"actors\":%d,\"jitter\":%lu}",
	    race ? "race" : "serial", iterations, repeats, nactors, jitter);
	write_file("/proc/sys/vm/compact_memory", "1");
	report_meminfo("start");
	for (int it = 0; it < iterations; it++) {
		long before, after;
		unsigned long leaked_thp = 0, leaked_pages = 0;

		memset(ioctl_errs, 0, sizeof(ioctl_errs));
		migrated_pages = lost_writes = thp_missing = thp_formed = 0;
		nsuspects = 0;
		write_file("/proc/sys/vm/compact_memory", "1");
		before = memfree_kb();
		for (int r = 0; r < repeats; r++)
			run_repeat(it, r, race, jitter, timeout);
		/* drain the per-CPU LRU batches (they hold references), then re-check */
		write_file("/proc/sys/vm/compact_memory", "1");
		for (unsigned long i = 0; i < nsuspects; i++) {
			uint64_t flags;
			int k = orphan_kind(suspects[i], &flags);

			if (!k)
				continue;
			if (nleaked_all < MAX_SUSPECTS)
				leaked_all[nleaked_all++] = suspects[i];
			if (k == 1)
				leaked_thp++;
			else
				leaked_pages++;
			if (leaked_thp + leaked_pages <= 4)
				out("MIGFUZZ {\"mfr\":\"leak\",\"i\":%d,\"pfn\":\"0x%" PRIx64
				    "\",\"flags\":\"0x%" PRIx64 "\",\"mapcount\":0,"
				    "\"kind\":\"%s\"}", it, suspects[i], flags,
				    k == 1 ? "thp" : "page");
		}
		after = memfree_kb();
		if (enforce_plan[0]) {
			char c[128] = "";
			int fd = open(MF_SCHED, O_RDONLY);

			if (fd >= 0) {
				ssize_t n = read(fd, c, sizeof(c) - 1);

				c[n > 0 ? n : 0] = 0;
				close(fd);
			}
			for (char *q = c; *q; q++)
				if (*q == '\n' || *q == '"')
					*q = ' ';
			out("MIGFUZZ {\"mfr\":\"enforce\",\"i\":%d,\"plan\":\"%s\","
			    "\"counters\":\"%s\"}", it, enforce_plan, c);
		}
		out("MIGFUZZ {\"mfr\":\"iter\",\"i\":%d,\"mode\":\"%s\",\"repeats\":%d,"
		    "\"leaked_thp\":%lu,\"leaked_pages\":%lu,\"lost_writes\":%ld,"
		    "\"thp_formed\":%ld,\"thp_missing\":%ld,\"migrated\":%ld,"
		    "\"enoent\":%ld,\"ebusy\":%ld,\"einval\":%ld,\"eother\":%ld,"
		    "\"memfree_before_kb\":%ld,\"memfree_after_kb\":%ld}", it, race ? "race" : "serial", repeats, leaked_thp,
		    leaked_pages, lost_writes, thp_formed, thp_missing, migrated_pages,
		    ioctl_errs[0], ioctl_errs[1], ioctl_errs[2], ioctl_errs[3], before, after);
	}
	report_meminfo("end");
	/* the leaks found along the way, once more at the end: still alive, still unmapped */
	if (nleaked_all) {
		unsigned long still = 0;

		sleep(1);
		write_file("/proc/sys/vm/compact_memory", "1");
		for (unsigned long i = 0; i < nleaked_all; i++)
			still += orphan_kind(leaked_all[i], NULL) != 0;
		out("MIGFUZZ {\"mfr\":\"final\",\"leaked\":%lu,\"still_leaked\":%lu,"
		    "\"memfree_kb\":%ld}", nleaked_all, still, memfree_kb());
	}
	out("MIGFUZZ {\"mfr\":\"end\",\"status\":\"ok\"}");
	return 0;
}
