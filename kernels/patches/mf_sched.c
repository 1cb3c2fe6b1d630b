/* SPDX-License-Identifier: GPL-2.0 */
/*
 * migfuzz schedule points (instrumentation for `kernel repro` in enforced mode; never for
 * production kernels). kernels/patches/apply_mf_sched.py appends this file to
 * mm/migrate_device.c and puts mf_sched_point("SITE") calls at the model's sites.
 *
 * /sys/kernel/debug/mf_sched takes a plan:   TGID HOLD_SITE UNTIL_SITE TIMEOUT_MS
 * The first task of process TGID that reaches HOLD_SITE afterwards is held there until
 * another task of TGID passes UNTIL_SITE (or TIMEOUT_MS passes); one hold per plan.
 * Writing "0" disarms. Reading it gives counters: holds, released by a pass, timeouts.
 */
#include <linux/atomic.h>
#include <linux/debugfs.h>
#include <linux/init.h>
#include <linux/jiffies.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#define MF_SITE_LEN 48

static DEFINE_SPINLOCK(mf_sched_lock);
static DECLARE_WAIT_QUEUE_HEAD(mf_sched_wq);
static char mf_hold_site[MF_SITE_LEN], mf_until_site[MF_SITE_LEN];
static pid_t mf_tgid;                    /* 0: disarmed */
static unsigned int mf_timeout_ms;
static bool mf_hold_taken;               /* the plan's one hold has started */
static struct task_struct *mf_holder;    /* the task held now, or NULL */
static bool mf_passed;                   /* UNTIL_SITE passed by another task while held */
static atomic_t mf_holds, mf_released, mf_timeouts;

void mf_sched_point(const char *site)
{
	unsigned long flags;
	bool hold = false;
	long left;

	if (likely(!READ_ONCE(mf_tgid)) || current->tgid != READ_ONCE(mf_tgid))
		return;
	spin_lock_irqsave(&mf_sched_lock, flags);
	if (mf_holder && mf_holder != current && !strcmp(site, mf_until_site)) {
		mf_passed = true;
		wake_up_all(&mf_sched_wq);
	} else if (!mf_hold_taken && !strcmp(site, mf_hold_site)) {
		mf_hold_taken = true;
		mf_holder = current;
		mf_passed = false;
		hold = true;
	}
	spin_unlock_irqrestore(&mf_sched_lock, flags);
	if (!hold)
		return;
	atomic_inc(&mf_holds);
	left = wait_event_timeout(mf_sched_wq, READ_ONCE(mf_passed),
				  msecs_to_jiffies(READ_ONCE(mf_timeout_ms)));
	if (left)
		atomic_inc(&mf_released);
	else
		atomic_inc(&mf_timeouts);
	spin_lock_irqsave(&mf_sched_lock, flags);
	mf_holder = NULL;
	spin_unlock_irqrestore(&mf_sched_lock, flags);
}

static ssize_t mf_sched_write(struct file *file, const char __user *ubuf, size_t count,
			      loff_t *ppos)
{
	char buf[2 * MF_SITE_LEN + 40], hold[MF_SITE_LEN], until[MF_SITE_LEN];
	unsigned long flags;
	unsigned int ms = 0;
	int tgid = 0, n;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = 0;
	n = sscanf(buf, "%d %47s %47s %u", &tgid, hold, until, &ms);
	if (n != 4 && !(n >= 1 && tgid == 0))
		return -EINVAL;
	spin_lock_irqsave(&mf_sched_lock, flags);
	if (tgid) {
		strscpy(mf_hold_site, hold, MF_SITE_LEN);
		strscpy(mf_until_site, until, MF_SITE_LEN);
		mf_timeout_ms = ms;
	}
	mf_hold_taken = false;
	mf_passed = false;
	WRITE_ONCE(mf_tgid, tgid);
	spin_unlock_irqrestore(&mf_sched_lock, flags);
	return count;
}

static ssize_t mf_sched_read(struct file *file, char __user *ubuf, size_t count,
			     loff_t *ppos)
{
	char buf[96];
	int n = scnprintf(buf, sizeof(buf), "holds %d released %d timeouts %d\n",
			  atomic_read(&mf_holds), atomic_read(&mf_released),
			  atomic_read(&mf_timeouts));

	return simple_read_from_buffer(ubuf, count, ppos, buf, n);
}

static const struct file_operations mf_sched_fops = {
	.write = mf_sched_write,
	.read = mf_sched_read,
	.llseek = default_llseek,
};

static int __init mf_sched_init(void)
{
	debugfs_create_file("mf_sched", 0600, NULL, NULL, &mf_sched_fops);
	return 0;
}
late_initcall(mf_sched_init);
