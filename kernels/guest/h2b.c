// SPDX-License-Identifier: GPL-2.0
/*
 * h2b: two concurrent migrations of one page of a pte-mapped THP (docs/kernel-h2b.md).
 *
 *   h2b [-i ITERATIONS] [-e "HOLD_SITE UNTIL_SITE TIMEOUT_MS"] [-d /dev/hmm_dmirror0]
 *
 * Each iteration:
 *  1. mmap 4 MiB anonymous, take the 2 MiB aligned half, MADV_HUGEPAGE, write every page:
 *     one THP (checked: /proc/self/pagemap + /proc/kpageflags say the head is KPF_THP and
 *     KPF_COMPOUND_HEAD, and smaps' AnonHugePages is 2048 kB: pmd-mapped).
 *  2. MADV_NOHUGEPAGE (keeps khugepaged off the range), then mprotect(PROT_READ) the first
 *     4 KiB and back to read/write: the pmd is split into ptes, the folio is not (checked:
 *     AnonHugePages 0 kB, the head still KPF_THP, same PFN); checked again right before the
 *     race (else "h2b-skip": the iteration is not a trial).
 *  3. with -e, arm the plan "<own tgid> HOLD UNTIL MS" in /sys/kernel/debug/mf_sched;
 *  4. two threads, after a barrier, each HMM_DMIRROR_MIGRATE_TO_DEV the THP's first page
 *     (the old head) through the same dmirror fd; join; print the counters; disarm.
 * Output: one "MIGFUZZ {json}" line per step (one write() each, so the kernel's console
 * output cannot split it). Exit 0 done, 1 a check of the setup failed, 2 bad usage.
 * With the bug, thread 1 oopses in the kernel (VM_BUG_ON_FOLIO in folio_get) while holding
 * the mmap lock: the program then never finishes; the /init script reports it stuck.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct mf_dmirror_cmd {		/* lib/test_hmm_uapi.h: struct hmm_dmirror_cmd */
	uint64_t addr, ptr, npages, cpages, faults;
};
#define MF_MIGRATE_TO_DEV _IOWR('H', 0x02, struct mf_dmirror_cmd)

#define PAGE 4096UL
#define HPAGE (2UL << 20)
#define KPF_COMPOUND_HEAD 15	/* include/uapi/linux/kernel-page-flags.h */
#define KPF_THP 22
#define MF_SCHED "/sys/kernel/debug/mf_sched"

static void emit(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "MIGFUZZ {");

	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 3, fmt, ap);
	va_end(ap);
	n += snprintf(buf + n, sizeof(buf) - n, "}\n");
	if (write(1, buf, n) < 0)
		_exit(3);
}

static int fail(const char *what)
{
	emit("\"event\": \"h2b-setup-failed\", \"what\": \"%s\", \"errno\": %d", what, errno);
	return 1;
}

static uint64_t pfn_of(void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (uintptr_t)addr / PAGE * 8) != 8)
		e = 0;
	close(fd);
	return (e >> 63) & 1 ? e & ((1ULL << 55) - 1) : 0;	/* present: bits 0-54 */
}

static uint64_t kflags(uint64_t pfn)
{
	uint64_t f = 0;
	int fd = open("/proc/kpageflags", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &f, 8, pfn * 8) != 8)
		f = 0;
	close(fd);
	return f;
}

/* smaps' AnonHugePages (kB) of the vma that contains addr; -1 if not found */
static long anon_huge_kb(void *addr)
{
	char line[256];
	FILE *f = fopen("/proc/self/smaps", "r");
	int in = 0;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = lo <= (uintptr_t)addr && (uintptr_t)addr < hi;
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

static int dmirror_fd;
static char *target;
static pthread_barrier_t barrier;

struct result {
	int rc, err;
	uint64_t cpages;
};

static void *migrator(void *arg)
{
	struct result *r = arg;
	static __thread char mirror[PAGE];
	struct mf_dmirror_cmd cmd = {
		.addr = (uintptr_t)target, .ptr = (uintptr_t)mirror, .npages = 1,
	};

	pthread_barrier_wait(&barrier);
	r->rc = ioctl(dmirror_fd, MF_MIGRATE_TO_DEV, &cmd);
	r->err = r->rc ? errno : 0;
	r->cpages = cmd.cpages;
	return NULL;
}

static int write_plan(const char *plan)
{
	int fd = open(MF_SCHED, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, plan, strlen(plan));
	close(fd);
	return n == (ssize_t)strlen(plan) ? 0 : -1;
}

static void print_counters(int it)
{
	char buf[96] = "";
	int fd = open(MF_SCHED, O_RDONLY);
	int holds = -1, released = -1, timeouts = -1;

	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) < 0)
			buf[0] = 0;
		close(fd);
		sscanf(buf, "holds %d released %d timeouts %d", &holds, &released, &timeouts);
	}
	emit("\"event\": \"h2b-counters\", \"iteration\": %d, \"holds\": %d, \"released\": %d, "
	     "\"timeouts\": %d", it, holds, released, timeouts);
}

static int iteration(int it, const char *plan)
{
	char *raw, *thp;
	uint64_t pfn, pfn2, f;
	long kb;
	pthread_t t[2];
	struct result r[2] = { { 0 } };
	char armed[200];

	raw = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return fail("mmap");
	thp = (char *)(((uintptr_t)raw + HPAGE - 1) & ~(HPAGE - 1));
	if (madvise(thp, HPAGE, MADV_HUGEPAGE))
		return fail("madvise");
	for (unsigned long off = 0; off < HPAGE; off += PAGE)
		thp[off] = (char)(off / PAGE + it);
	pfn = pfn_of(thp);
	f = kflags(pfn);
	kb = anon_huge_kb(thp);
	emit("\"event\": \"h2b-thp\", \"iteration\": %d, \"pfn\": %llu, \"thp\": %d, \"head\": %d, "
	     "\"anon_huge_kb\": %ld", it, (unsigned long long)pfn, (int)(f >> KPF_THP & 1),
	     (int)(f >> KPF_COMPOUND_HEAD & 1), kb);
	if (!pfn || !(f >> KPF_THP & 1) || !(f >> KPF_COMPOUND_HEAD & 1) || kb < 2048)
		return fail("no pmd-mapped THP after MADV_HUGEPAGE and touching it");

	/* khugepaged must not touch this range from now on: it collapses a pte-mapped THP into
	 * a new pmd-mapped one (the old folio freed), and a race on that is not H2b's. Seen
	 * before this: 1 boot in 4, 210 races in 2,000 without the large folio at the ioctls.
	 * MADV_NOHUGEPAGE only sets VM_NOHUGEPAGE; the THP stays. */
	if (madvise(thp, HPAGE, MADV_NOHUGEPAGE))
		return fail("madvise(MADV_NOHUGEPAGE)");
	/* split the pmd, not the folio */
	if (mprotect(thp, PAGE, PROT_READ) || mprotect(thp, PAGE, PROT_READ | PROT_WRITE))
		return fail("mprotect");
	pfn2 = pfn_of(thp);
	f = kflags(pfn2);
	kb = anon_huge_kb(thp);
	emit("\"event\": \"h2b-pte-mapped\", \"iteration\": %d, \"pfn\": %llu, \"thp\": %d, "
	     "\"head\": %d, \"anon_huge_kb\": %ld", it, (unsigned long long)pfn2,
	     (int)(f >> KPF_THP & 1), (int)(f >> KPF_COMPOUND_HEAD & 1), kb);
	if (pfn2 != pfn || !(f >> KPF_THP & 1) || !(f >> KPF_COMPOUND_HEAD & 1) || kb != 0)
		return fail("not a pte-mapped large folio after the mprotect round trip");

	target = thp;
	if (plan) {
		snprintf(armed, sizeof(armed), "%d %s", getpid(), plan);
		if (write_plan(armed))
			return fail("arming " MF_SCHED " (an mf_sched kernel?)");
	}
	/* still the same large folio, pte-mapped, right before the race? */
	pfn2 = pfn_of(thp);
	f = kflags(pfn2);
	if (pfn2 != pfn || !(f >> KPF_THP & 1) || !(f >> KPF_COMPOUND_HEAD & 1)) {
		emit("\"event\": \"h2b-skip\", \"iteration\": %d, \"pfn\": %llu, \"thp\": %d",
		     it, (unsigned long long)pfn2, (int)(f >> KPF_THP & 1));
		if (plan)
			write_plan("0");
		munmap(raw, 2 * HPAGE);
		return 0;
	}
	pthread_barrier_init(&barrier, NULL, 2);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, migrator, &r[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&barrier);
	f = kflags(pfn);
	emit("\"event\": \"h2b-migrated\", \"iteration\": %d, \"rc\": [%d, %d], "
	     "\"errno\": [%d, %d], \"cpages\": [%llu, %llu], \"old_head_flags\": %llu", it,
	     r[0].rc, r[1].rc, r[0].err, r[1].err, (unsigned long long)r[0].cpages,
	     (unsigned long long)r[1].cpages, (unsigned long long)f);
	if (plan) {
		print_counters(it);
		write_plan("0");
	}
	/* the data must have survived (read back through the CPU: faults it back) */
	for (unsigned long off = 0; off < HPAGE; off += PAGE)
		if (thp[off] != (char)(off / PAGE + it)) {
			emit("\"event\": \"h2b-data-mismatch\", \"iteration\": %d, \"page\": %lu",
			     it, off / PAGE);
			break;
		}
	munmap(raw, 2 * HPAGE);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/hmm_dmirror0", *plan = NULL;
	int iterations = 1, c, rc = 0;

	while ((c = getopt(argc, argv, "i:e:d:")) != -1) {
		switch (c) {
		case 'i': iterations = atoi(optarg); break;
		case 'e': plan = optarg; break;
		case 'd': dev = optarg; break;
		default:
			fprintf(stderr, "usage: h2b [-i N] [-e 'HOLD UNTIL MS'] [-d DEV]\n");
			return 2;
		}
	}
	if (iterations < 1) {
		fprintf(stderr, "h2b: -i takes a positive count\n");
		return 2;
	}
	dmirror_fd = open(dev, O_RDWR);
	if (dmirror_fd < 0)
		return fail("open dmirror");
	emit("\"event\": \"h2b-start\", \"iterations\": %d, \"enforce\": \"%s\", \"pid\": %d",
	     iterations, plan ? plan : "", getpid());
	for (int it = 0; it < iterations && !rc; it++)
		rc = iteration(it, plan);
	emit("\"event\": \"h2b-end\", \"rc\": %d", rc);
	return rc;
}
