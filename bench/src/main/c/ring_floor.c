// The split-ring floor: what the file path of `bench/run virtio-blk` could reach with the least work any
// virtio-blk implementation does per request, written in C with no checks beyond the essential ones, no
// JVM, no block layer, no interrupts. VirtioBlkBench runs it between its own turns (--floor).
//
// A guest thread keeps QD reads of BS bytes at random blocks in flight in a split virtqueue in its own
// "guest RAM", as the benchmark's guest program and its driver (VirtioBlkGuest) do: three descriptors per
// request taken from a free list and given back to its front on completion (as Linux does), a 64-byte slot
// per head descriptor (header at +0, status byte at +32, set to 0xff before submission and checked at
// completion, the request's tag at +40), an available entry; after each poll that found completions, the
// requests submitted again in the order they completed, the index published, a full fence and the
// available event read (the kick decision); polling every 5 us when it found nothing. A device thread
// spins on the available index and, per chain: the available entry, the descriptors, the header, one
// pread() into the guest's buffer; every 8 answers: the status bytes, the used elements, the used index
// and a full fence before reading the used event (as EVENT_IDX requires). The reference is the same
// preads issued back to back by one thread into 32 rotating buffers.
//
// Usage: ring_floor FILE QD BS TURN_MS
// Then one line per turn on standard input ("turn"): runs a reference turn and a model turn of TURN_MS
// each and answers "reference_iops=N model_iops=N". Ends at end of input.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_BYTES (64u << 20)
#define DESC_OFF 0x10000u
#define AVAIL_OFF 0x20000u
#define USED_OFF 0x30000u
#define SLOT_OFF 0x100000u
#define SLOT_STATUS 32
#define BUF_OFF 0x200000u
#define REF_BUF_OFF 0x2000000u
#define SLOT_TAG 40
#define PUBLISH 8
#define POLL_INTERVAL_NS 5000
#define F_NEXT 1
#define F_WRITE 2

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static uint8_t *ram;
static int fd;
static unsigned qd, bs, qsize;
static uint64_t blocks;
static atomic_int stop;
static atomic_ulong model_done;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t next_random(uint64_t *r) {
    uint64_t x = *r;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *r = x;
}

static void die(const char *what) {
    fprintf(stderr, "ring_floor: %s\n", what);
    exit(1);
}

static struct desc *desc_table(void) { return (struct desc *)(ram + DESC_OFF); }
static uint16_t *avail_ring(void) { return (uint16_t *)(ram + AVAIL_OFF + 4); }
static _Atomic uint16_t *avail_idx(void) { return (_Atomic uint16_t *)(ram + AVAIL_OFF + 2); }
static _Atomic uint16_t *used_event(void) { return (_Atomic uint16_t *)(ram + AVAIL_OFF + 4 + 2 * qsize); }
static uint64_t *used_ring(void) { return (uint64_t *)(ram + USED_OFF + 4); }
static _Atomic uint16_t *used_idx(void) { return (_Atomic uint16_t *)(ram + USED_OFF + 2); }

// ---- the guest ----

struct guest {
    uint64_t random;
    uint16_t avail;
    uint16_t free_head;
    uint16_t num_free;
};

static void guest_reset(struct guest *g) {
    struct desc *t = desc_table();
    for (unsigned i = 0; i < qsize; i++) {
        t[i].next = (uint16_t)(i + 1);
    }
    g->avail = 0;
    g->free_head = 0;
    g->num_free = (uint16_t)qsize;
}

static void submit(struct guest *g, unsigned tag) {
    struct desc *t = desc_table();
    if (g->num_free < 3) {
        die("the guest ran out of descriptors");
    }
    unsigned d0 = g->free_head, d1 = t[d0].next, d2 = t[d1].next;
    g->free_head = t[d2].next;
    g->num_free -= 3;
    uint64_t block = next_random(&g->random) % blocks;
    uint64_t slot = SLOT_OFF + 64u * d0;
    uint32_t *hdr = (uint32_t *)(ram + slot);
    hdr[0] = 0; // VIRTIO_BLK_T_IN
    hdr[1] = 0;
    *(uint64_t *)(ram + slot + 8) = block * (bs / 512);
    ram[slot + SLOT_STATUS] = 0xff;
    *(uint64_t *)(ram + slot + SLOT_TAG) = tag;
    // each descriptor written whole but its next, which alloc linked
    t[d0].addr = slot, t[d0].len = 16, t[d0].flags = F_NEXT;
    t[d1].addr = BUF_OFF + (uint64_t)tag * bs, t[d1].len = bs, t[d1].flags = F_NEXT | F_WRITE;
    t[d2].addr = slot + SLOT_STATUS, t[d2].len = 1, t[d2].flags = F_WRITE;
    avail_ring()[g->avail % qsize] = (uint16_t)d0;
    g->avail++;
}

/** Gives a completed chain back to the front of the free list; returns its tag. */
static unsigned complete(struct guest *g, unsigned head) {
    struct desc *t = desc_table();
    uint64_t slot = SLOT_OFF + 64u * head;
    if (ram[slot + SLOT_STATUS] != 0) {
        die("a read failed");
    }
    unsigned tag = (unsigned)*(uint64_t *)(ram + slot + SLOT_TAG);
    unsigned i = head, n = 1;
    while (t[i].flags & F_NEXT) {
        i = t[i].next;
        n++;
    }
    t[i].flags = 0;
    t[i].next = g->free_head;
    g->free_head = (uint16_t)head;
    g->num_free += n;
    return tag;
}

static void kick(struct guest *g) {
    atomic_store_explicit(avail_idx(), g->avail, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    (void)atomic_load_explicit((_Atomic uint16_t *)(ram + USED_OFF + 4 + 8 * qsize), memory_order_relaxed);
}

static void *guest_main(void *arg) {
    struct guest *g = arg;
    uint16_t last_used = 0;
    unsigned again[256];
    for (unsigned tag = 0; tag < qd; tag++) {
        submit(g, tag);
    }
    kick(g);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint16_t ui = atomic_load_explicit(used_idx(), memory_order_acquire);
        if (ui == last_used) {
            uint64_t t = now_ns();
            while (now_ns() - t < POLL_INTERVAL_NS) {
            }
            continue;
        }
        unsigned n = 0;
        while (last_used != ui && n < qd) {
            uint32_t head = (uint32_t)used_ring()[last_used % qsize];
            if (head >= qsize) {
                die("used element out of range");
            }
            last_used++;
            again[n++] = complete(g, head);
        }
        for (unsigned k = 0; k < n; k++) {
            submit(g, again[k]);
        }
        kick(g);
    }
    return NULL;
}

// ---- the device ----

static void *device_main(void *arg) {
    (void)arg;
    struct desc *t = desc_table();
    uint16_t last_avail = 0, used = 0;
    uint16_t done_head[PUBLISH];
    uint64_t done_status[PUBLISH];
    unsigned n = 0;
    unsigned long done = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint16_t ai = atomic_load_explicit(avail_idx(), memory_order_acquire);
        if ((uint16_t)(ai - last_avail) > qsize) {
            die("available index out of range");
        }
        while (last_avail != ai || n > 0) {
            if (last_avail != ai) {
                uint16_t head = avail_ring()[last_avail % qsize];
                last_avail++;
                uint64_t addr[3];
                uint32_t len[3];
                unsigned c = 0;
                for (unsigned i = head;;) {
                    if (i >= qsize || c == 3) {
                        die("malformed chain");
                    }
                    struct desc d = t[i];
                    if (d.len == 0 || d.addr + d.len > RAM_BYTES) {
                        die("descriptor outside RAM");
                    }
                    addr[c] = d.addr;
                    len[c] = d.len;
                    c++;
                    if (!(d.flags & F_NEXT)) {
                        break;
                    }
                    i = d.next;
                }
                uint32_t type = *(uint32_t *)(ram + addr[0]);
                uint64_t sector = *(uint64_t *)(ram + addr[0] + 8);
                if (c != 3 || type != 0 || len[0] < 16 || len[2] < 1 || sector * 512 + len[1] > blocks * bs) {
                    die("unexpected request");
                }
                if (pread(fd, ram + addr[1], len[1], (off_t)(sector * 512)) != (ssize_t)len[1]) {
                    die("pread failed");
                }
                done_head[n] = head;
                done_status[n] = addr[2];
                n++;
                done++;
                if (n < PUBLISH && last_avail != ai) {
                    continue;
                }
            }
            for (unsigned k = 0; k < n; k++) {
                ram[done_status[k]] = 0;
                used_ring()[used % qsize] = done_head[k] | (uint64_t)(bs + 1) << 32;
                used++;
            }
            n = 0;
            atomic_store_explicit(used_idx(), used, memory_order_release);
            atomic_thread_fence(memory_order_seq_cst);
            (void)atomic_load_explicit(used_event(), memory_order_acquire);
            atomic_store_explicit(&model_done, done, memory_order_relaxed);
        }
    }
    return NULL;
}

// ---- turns ----

static double reference_turn(uint64_t ms, uint64_t *random) {
    uint64_t start = now_ns(), end = start + ms * 1000000u, count = 0, t;
    unsigned s = 0;
    do {
        for (int k = 0; k < 64; k++) {
            uint64_t block = next_random(random) % blocks;
            if (pread(fd, ram + REF_BUF_OFF + (uint64_t)s * bs, bs, (off_t)(block * bs)) != (ssize_t)bs) {
                die("pread failed");
            }
            s = (s + 1) % qd;
        }
        count += 64;
        t = now_ns();
    } while (t < end);
    return count * 1e9 / (double)(t - start);
}

static double model_turn(uint64_t ms, struct guest *g) {
    memset(ram + DESC_OFF, 0, USED_OFF + 0x10000 - DESC_OFF);
    guest_reset(g);
    atomic_store(&stop, 0);
    atomic_store(&model_done, 0);
    pthread_t gt, dt;
    if (pthread_create(&dt, NULL, device_main, NULL) || pthread_create(&gt, NULL, guest_main, g)) {
        die("cannot start threads");
    }
    // the first tenth is not counted
    struct timespec settle = {0, (long)(ms * 100000u)};
    nanosleep(&settle, NULL);
    uint64_t c0 = atomic_load(&model_done), t0 = now_ns();
    struct timespec rest = {(time_t)(ms * 9 / 10 / 1000), (long)(ms * 9 / 10 % 1000 * 1000000u)};
    nanosleep(&rest, NULL);
    uint64_t c1 = atomic_load(&model_done), t1 = now_ns();
    atomic_store(&stop, 1);
    pthread_join(gt, NULL);
    pthread_join(dt, NULL);
    return (c1 - c0) * 1e9 / (double)(t1 - t0);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: ring_floor FILE QD BS TURN_MS\n");
        return 2;
    }
    qd = (unsigned)atoi(argv[2]);
    bs = (unsigned)atoi(argv[3]);
    uint64_t ms = (uint64_t)atoll(argv[4]);
    if (qd < 1 || qd > 256 || bs < 512 || bs % 512 != 0 || bs > (1u << 20) || ms < 10) {
        die("QD must be 1..256, BS a multiple of 512 up to 1 MiB, TURN_MS at least 10");
    }
    qsize = 16;
    while (qsize < 3 * qd) {
        qsize <<= 1;
    }
    if (qsize > 1024) {
        die("QD too large for the queue");
    }
    if ((uint64_t)qd * bs > REF_BUF_OFF - BUF_OFF) {
        die("QD x BS too large");
    }
    fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "ring_floor: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    blocks = (uint64_t)lseek(fd, 0, SEEK_END) / bs;
    if (blocks == 0) {
        die("the file is smaller than one block");
    }
    ram = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ram == MAP_FAILED) {
        die("cannot map RAM");
    }
    memset(ram, 0, RAM_BYTES);
    struct guest g = {.random = 0x9E3779B97F4A7C15ull};
    uint64_t random = 0x9E3779B97F4A7C15ull;
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "turn", 4) != 0) {
            die("unknown command (expected \"turn\")");
        }
        double reference = reference_turn(ms, &random);
        double model = model_turn(ms, &g);
        printf("reference_iops=%.0f model_iops=%.0f\n", reference, model);
        fflush(stdout);
    }
    return 0;
}
