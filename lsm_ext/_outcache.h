/*
 * _outcache.h -- a small cache of large output buffers (NumPy path).
 *
 * A fresh buffer of more than about 32 MB comes from the operating system
 * (glibc maps blocks that large and unmaps them on free), and writing it the
 * first time costs the kernel's page faults and zeroing: about 2.4 ms per
 * 32 MB here, as much as the softmax itself. The outputs of lsm_ext's
 * functions are allocated through the NumPy memory handler below, which keeps
 * the blocks of freed outputs (at most LSM_OC_SLOTS blocks of at least
 * LSM_OC_MIN bytes, `limit` bytes in all) and hands one back when an output
 * of the same size is asked for, so that a loop calling lsm_ext on arrays of
 * one shape stops paying for fresh pages. Everything else goes to NumPy's
 * default handler (which also takes back what the cache lets go). Arrays keep
 * a reference to their handler, so a cached block is always freed here.
 * The blocks start at a chosen offset from a 64-byte boundary (below), with
 * or without the cache.
 *
 * Included by _outcache.pyx after numpy/arrayobject.h; thread-safe (one
 * lock, taken without the GIL being needed).
 */
#ifndef LSM_OUTCACHE_H
#define LSM_OUTCACHE_H

#include <Python.h>
#include <pythread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LSM_OC_SLOTS 8
#define LSM_OC_MIN ((size_t)1 << 20)

typedef struct {
    void *p;         /* a free block, or NULL */
    size_t size;     /* its size in bytes */
    uint64_t stamp;  /* when it was freed (the oldest goes first) */
} lsm_oc_slot;

static struct {
    PyThread_type_lock lock;
    PyDataMem_Handler *dflt; /* NumPy's default handler */
    lsm_oc_slot slot[LSM_OC_SLOTS];
    size_t held;   /* bytes held in the slots */
    size_t limit;  /* most bytes held; 0 caches nothing */
    uint64_t clock;
    uint64_t hits, misses;
} lsm_oc;

/* Every block of these handlers starts at a set offset from a 64-byte
 * boundary (a cache line): 0 for softmax and the float64 log_softmax and
 * JVP written row by row, so that the kernels' 64-byte vector stores never
 * straddle two lines (2-6% off their time on (4096, 1024) float32, A/B,
 * Zen 5); the input's own offset for the VJP, the float32 log_softmax and
 * JVP (rows read on other lines than they are written to cost them up to
 * 1.85x on Zen 4: _core.output_at_input), and for outputs written by
 * column blocks, whose blocks are cut to the input's lines (an output on
 * other lines cost those 2-4%). Handler i (ctx) gives offset
 * LSM_OC_STEP * i. Blocks of LSM_OC_MIN bytes and more take that offset
 * from a page (4 KB) boundary, not just from a line: an output whose page
 * offset is a little above its input's (NumPy's large arrays start 16 bytes
 * into a page, and the blocks were 64 or 80) has its stores land on the
 * page offsets of the loads that follow them, which the core then holds
 * back as if they depended on the stores (4K aliasing): a softmax pass that
 * reads x and writes y in one loop took 1.3-1.5x the time ((512, 32000),
 * (8, 2M) float32 and float64, out= at page offsets 64 and 16 against x at
 * 16, 1 thread, Zen 4), log_softmax 1.02-1.06x. At the page offset of the
 * input (from its line offset: 16 for NumPy's), or at 0 (behind it), the
 * stores follow the loads. A header just in front of the block holds the
 * pointer and size that NumPy's default handler gave. */
#define LSM_OC_LINE 64
#define LSM_OC_PAGE 4096
#define LSM_OC_STEP 4
#define LSM_OC_OFFSETS (LSM_OC_LINE / LSM_OC_STEP)
typedef struct {
    void *raw;   /* the default handler's block */
    size_t size; /* the size asked for (the block's usable bytes) */
} lsm_oc_head;

/* The boundary a block of `size` usable bytes starts from (plus its
 * offset). */
static size_t lsm_oc_align(size_t size) {
    return size >= LSM_OC_MIN ? LSM_OC_PAGE : LSM_OC_LINE;
}

/* Its padding: the header, up to a boundary, up to a line of offset. */
static size_t lsm_oc_pad(size_t size) {
    return sizeof(lsm_oc_head) + lsm_oc_align(size) + LSM_OC_LINE;
}

static lsm_oc_head lsm_oc_head_of(void *p) {
    lsm_oc_head h;
    memcpy(&h, (char *)p - sizeof h, sizeof h);
    return h;
}

/* Where the block of default-handler block raw (of the given usable size)
 * starts for handler context ctx; writes its header there. */
static void *lsm_oc_place(char *raw, size_t size, void *ctx) {
    const uintptr_t a = (uintptr_t)(raw + sizeof(lsm_oc_head));
    const uintptr_t al = lsm_oc_align(size);
    char *p = raw + sizeof(lsm_oc_head) + (al - a % al) % al +
              (uintptr_t)ctx * LSM_OC_STEP;
    const lsm_oc_head h = {raw, size};
    memcpy(p - sizeof h, &h, sizeof h);
    return p;
}

/* A new block of `size` bytes (zeroed when zero) from the default handler,
 * placed for ctx; NULL when out of memory. */
static void *lsm_oc_fresh(size_t size, int zero, void *ctx) {
    if (size > (size_t)-1 - lsm_oc_pad(size)) {
        return NULL;
    }
    const size_t total = size + lsm_oc_pad(size);
    void *dctx = lsm_oc.dflt->allocator.ctx;
    char *raw = zero ? lsm_oc.dflt->allocator.calloc(dctx, 1, total)
                     : lsm_oc.dflt->allocator.malloc(dctx, total);
    return raw ? lsm_oc_place(raw, size, ctx) : NULL;
}

/* Gives block p back to the default handler. */
static void lsm_oc_release(void *p) {
    const lsm_oc_head h = lsm_oc_head_of(p);
    lsm_oc.dflt->allocator.free(lsm_oc.dflt->allocator.ctx, h.raw,
                                h.size + lsm_oc_pad(h.size));
}

static void *lsm_oc_malloc(void *ctx, size_t size) {
    void *p = NULL;
    if (size >= LSM_OC_MIN) {
        PyThread_acquire_lock(lsm_oc.lock, WAIT_LOCK);
        for (int i = 0; i < LSM_OC_SLOTS; i++) {
            if (lsm_oc.slot[i].p && lsm_oc.slot[i].size == size) {
                p = lsm_oc.slot[i].p;
                lsm_oc.slot[i].p = NULL;
                lsm_oc.held -= size;
                break;
            }
        }
        if (p) {
            lsm_oc.hits++;
        } else {
            lsm_oc.misses++;
        }
        PyThread_release_lock(lsm_oc.lock);
    }
    /* a cached block, placed anew for this handler's offset */
    return p ? lsm_oc_place(lsm_oc_head_of(p).raw, size, ctx)
             : lsm_oc_fresh(size, 0, ctx);
}

static void *lsm_oc_calloc(void *ctx, size_t nelem, size_t elsize) {
    if (elsize != 0 && nelem > (size_t)-1 / elsize) {
        return NULL;
    }
    return lsm_oc_fresh(nelem * elsize, 1, ctx);
}

static void *lsm_oc_realloc(void *ctx, void *ptr, size_t new_size) {
    if (!ptr) {
        return lsm_oc_fresh(new_size, 0, ctx);
    }
    const size_t old = lsm_oc_head_of(ptr).size;
    void *p = lsm_oc_fresh(new_size, 0, ctx);
    if (p) { /* on failure ptr stays valid, as realloc's contract asks */
        memcpy(p, ptr, old < new_size ? old : new_size);
        lsm_oc_release(ptr);
    }
    return p;
}

/* Index of the oldest block held, or -1 (lock held). */
static int lsm_oc_oldest(void) {
    int old = -1;
    for (int i = 0; i < LSM_OC_SLOTS; i++) {
        if (lsm_oc.slot[i].p &&
            (old < 0 || lsm_oc.slot[i].stamp < lsm_oc.slot[old].stamp)) {
            old = i;
        }
    }
    return old;
}

/* Empties slot i (lock held). */
static void lsm_oc_drop(int i) {
    if (lsm_oc.slot[i].p) {
        lsm_oc_release(lsm_oc.slot[i].p);
        lsm_oc.held -= lsm_oc.slot[i].size;
        lsm_oc.slot[i].p = NULL;
    }
}

/* Frees blocks, oldest first, until `keep` more bytes fit under the limit
 * (lock held). */
static void lsm_oc_evict(size_t keep) {
    while (lsm_oc.held > 0 && lsm_oc.held + keep > lsm_oc.limit) {
        lsm_oc_drop(lsm_oc_oldest());
    }
}

static void lsm_oc_free(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    if (!ptr) {
        return;
    }
    size = lsm_oc_head_of(ptr).size;
    if (size >= LSM_OC_MIN) {
        int kept = 0;
        PyThread_acquire_lock(lsm_oc.lock, WAIT_LOCK);
        if (size <= lsm_oc.limit) {
            lsm_oc_evict(size);
            int i = 0;
            while (i < LSM_OC_SLOTS && lsm_oc.slot[i].p) {
                i++;
            }
            if (i == LSM_OC_SLOTS) { /* every slot in use: the oldest goes */
                i = lsm_oc_oldest();
                lsm_oc_drop(i);
            }
            lsm_oc.slot[i].p = ptr;
            lsm_oc.slot[i].size = size;
            lsm_oc.slot[i].stamp = ++lsm_oc.clock;
            lsm_oc.held += size;
            kept = 1;
        }
        PyThread_release_lock(lsm_oc.lock);
        if (kept) {
            return;
        }
    }
    lsm_oc_release(ptr);
}

/* One handler per offset (set up by lsm_oc_init). */
static PyDataMem_Handler lsm_oc_handler[LSM_OC_OFFSETS];

/* Handler i (its offset LSM_OC_STEP * i bytes past a line), as a capsule
 * for PyDataMem_SetHandler. */
static PyObject *lsm_oc_handler_capsule(int i) {
    return PyCapsule_New(&lsm_oc_handler[i], "mem_handler", NULL);
}

/* Sets up the cache with NumPy's default handler behind it; -1 on error. */
static int lsm_oc_init(size_t limit) {
    lsm_oc.dflt = (PyDataMem_Handler *)PyCapsule_GetPointer(
        PyDataMem_DefaultHandler, "mem_handler");
    if (!lsm_oc.dflt) {
        return -1;
    }
    lsm_oc.lock = PyThread_allocate_lock();
    if (!lsm_oc.lock) {
        PyErr_NoMemory();
        return -1;
    }
    lsm_oc.limit = limit;
    for (int i = 0; i < LSM_OC_OFFSETS; i++) {
        lsm_oc_handler[i] = (PyDataMem_Handler){
            "lsm_ext_output_cache",
            1,
            {(void *)(uintptr_t)i, lsm_oc_malloc, lsm_oc_calloc,
             lsm_oc_realloc, lsm_oc_free},
        };
    }
    return 0;
}

/* Sets the limit (frees what no longer fits) and returns the previous one. */
static size_t lsm_oc_set_limit(size_t limit) {
    PyThread_acquire_lock(lsm_oc.lock, WAIT_LOCK);
    size_t prev = lsm_oc.limit;
    lsm_oc.limit = limit;
    lsm_oc_evict(0);
    PyThread_release_lock(lsm_oc.lock);
    return prev;
}

/* The limit, bytes held, hits and misses (allocations of at least
 * LSM_OC_MIN bytes), read together under the lock. */
static void lsm_oc_stats(size_t *limit, size_t *held, uint64_t *hits,
                         uint64_t *misses) {
    PyThread_acquire_lock(lsm_oc.lock, WAIT_LOCK);
    *limit = lsm_oc.limit;
    *held = lsm_oc.held;
    *hits = lsm_oc.hits;
    *misses = lsm_oc.misses;
    PyThread_release_lock(lsm_oc.lock);
}

#endif /* LSM_OUTCACHE_H */
