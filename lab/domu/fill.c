/* xenkdump.fleet lab: /init of a tiny PV domU that fills its memory with incompressible data.
 * Copyright: xenkdump.fleet developers; GPL-3.0-or-later.
 *
 * The lab's guests stand in for a fleet host's domUs in crash-dump measurements: every page of
 * a real guest holds data no compressor can shrink, so a whole-memory dump (makedumpfile -d 0)
 * of a host with guests grows with guest memory, while a dump that excludes domU pages (-X)
 * does not.  This program is the guest's whole userspace (static, no libc beyond the syscalls):
 * it asks the kernel how much RAM is free, maps all of it but a small reserve, writes xorshift
 * output to every byte (a fresh seed per guest: no two pages alike, no page compressible), says
 * so on the console, and then idles forever (pause(): no CPU used, pages stay in place).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <unistd.h>

#define RESERVE_MB 48UL   /* left to the kernel: page tables, slab, the console */
#define CHUNK_MB 16UL

static uint64_t state;

static inline uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

int main(void)
{
    struct sysinfo si;
    struct timeval tv;
    unsigned long free_mb, want_mb, done_mb = 0;

    if (sysinfo(&si) != 0) {
        printf("xenkdump-fill: sysinfo failed\n");
        for (;;) pause();
    }
    free_mb = (unsigned long)((uint64_t)si.freeram * si.mem_unit >> 20);
    want_mb = free_mb > RESERVE_MB + CHUNK_MB ? free_mb - RESERVE_MB : 0;
    gettimeofday(&tv, NULL);
    state = ((uint64_t)tv.tv_sec << 20) ^ (uint64_t)tv.tv_usec ^ ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15ULL;
    printf("xenkdump-fill: %lu MiB free, filling %lu MiB\n", free_mb, want_mb);
    fflush(stdout);
    while (done_mb + CHUNK_MB <= want_mb) {
        uint64_t *p = mmap(NULL, CHUNK_MB << 20, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        size_t i, n = (CHUNK_MB << 20) / sizeof(uint64_t);
        if (p == MAP_FAILED)
            break;
        for (i = 0; i < n; i++)
            p[i] = next();
        done_mb += CHUNK_MB;
    }
    printf("XENKDUMP_FILL_DONE %lu MiB\n", done_mb);
    fflush(stdout);
    for (;;)
        pause();
    return 0;
}
