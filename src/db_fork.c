/*
 * db_fork.c - forks: a new database whose version 1 is another's version
 * N, naming that database's immutable objects instead of copying them
 * (docs/format.md section 9), and the pins that keep them from the
 * source's gc.
 *
 * Layer: services, part of the engine (db_int.h).  No state of its own;
 * db->mu is never held here.  The protocol against the source's gc (C11
 * in docs/commit.md): the pin SRC/forks/{id}.json is created before the
 * source's gc floor is read; gc lists the pins after writing its floor and
 * removes nothing at or above the oldest pinned version.
 */
#include "db_int.h"

#define FORK_PINS "forks/"

void dsq__foreign_full_key(const struct dsq_db *db, const char *rel, char *out,
                           size_t outsz)
{
    /* "../src/..." resolved against this prefix; a key that climbs above
       the store's root stays as it is, and the store refuses it */
    char base[DSQ_KEY_MAX];
    snprintf(base, sizeof(base), "%s/", db->prefix);
    if (!db->prefix[0] || dsq_key_rebase(base, rel, out, outsz) != 0 ||
        dsq_key_is_foreign(out))
        snprintf(out, outsz, "%s", rel);
}

/*
 * A chunk of another database (a fork's source) names segments relative
 * to that database: make them relative to this one ("segments/x" of
 * "../src/pagetables/y.ptc" is "../src/segments/x").  0, or -1 if a key
 * does not resolve to a valid one.
 */
int dsq__chunk_rebase(struct dsq_chunk *c, const char *chunk_key)
{
    char base[DSQ_KEY_MAX], k[DSQ_KEY_MAX];
    dsq_key_base(chunk_key, base, sizeof(base));
    for (size_t i = 0; i < c->n_segments; i++) {
        if (dsq_key_rebase(base, c->segments[i], k, sizeof(k)) != 0)
            return -1;
        int ok = dsq_key_is_foreign(k)
                     ? dsq_foreign_key_valid(k, strlen(k), "segments/")
                     : dsq_object_key_valid(k, strlen(k), "segments/");
        char *d = ok ? strdup(k) : NULL;
        if (!d)
            return -1;
        free(c->segments[i]);
        c->segments[i] = d;
    }
    return 0;
}

struct pins {
    struct dsq_db *db;
    uint64_t min; /* UINT64_MAX: none */
    size_t n;
    dsq_rc rc;
    struct dsq_err *e;
};

static int pin_fn(const char *rel, const struct dsq_objinfo *info, void *arg)
{
    struct pins *p = arg;
    (void)info;
    struct dsq_buf b;
    dsq_buf_init(&b, DSQ_ROOT_MAX_BYTES);
    struct dsq_forkpin pin;
    p->rc = dsq__obj_get(p->db, rel, 0, 0, &b, NULL, p->e);
    if (p->rc == DSQ_ENOTFOUND) { /* removed meanwhile: released */
        dsq_err_clear(p->e);
        p->rc = DSQ_OK;
    } else if (p->rc == DSQ_OK) {
        p->rc = dsq_forkpin_decode(b.data, b.len, rel, &pin, p->e);
        if (p->rc == DSQ_OK) {
            p->n++;
            if (pin.version < p->min)
                p->min = pin.version;
        }
    }
    dsq_buf_cleanup(&b);
    return p->rc != DSQ_OK;
}

dsq_rc dsq__fork_pins_min(struct dsq_db *db, uint64_t *min, size_t *n,
                          struct dsq_err *e)
{
    struct pins p = {.db = db, .min = UINT64_MAX, .e = e};
    dsq_rc rc = dsq__list_rel(db, FORK_PINS, NULL, pin_fn, &p, e);
    if (rc == DSQ_OK)
        rc = p.rc;
    if (rc == DSQ_OK) {
        *min = p.min;
        if (n)
            *n = p.n;
    }
    return rc;
}

/* Components of a prefix ("" has none). */
static size_t components(const char *p, const char **v, size_t *len, size_t max)
{
    size_t n = 0;
    while (*p && n < max) {
        const char *q = strchr(p, '/');
        size_t l = q ? (size_t)(q - p) : strlen(p);
        v[n] = p;
        len[n++] = l;
        p = q ? q + 1 : p + l;
    }
    return n;
}

/* The base under which dst names src's objects ("../src/"), or -1 when one
   lies inside the other (or they are the same). */
static int relative_base(const char *dst, const char *src, char *out,
                         size_t outsz)
{
    const char *dv[256], *sv[256];
    size_t dl[256], sl[256];
    size_t nd = components(dst, dv, dl, 256), ns = components(src, sv, sl, 256);
    size_t c = 0;
    while (c < nd && c < ns && dl[c] == sl[c] && !memcmp(dv[c], sv[c], dl[c]))
        c++;
    if (c == nd || c == ns)
        return -1;
    size_t k = 0;
    for (size_t i = c; i < nd; i++) {
        if (k + 4 > outsz)
            return -1;
        memcpy(out + k, "../", 3);
        k += 3;
    }
    for (size_t i = c; i < ns; i++) {
        if (k + sl[i] + 2 > outsz)
            return -1;
        memcpy(out + k, sv[i], sl[i]);
        k += sl[i];
        out[k++] = '/';
    }
    out[k] = 0;
    return 0;
}

static char *rebased(const char *base, const char *key)
{
    char k[DSQ_KEY_MAX];
    if (dsq_key_rebase(base, key, k, sizeof(k)) != 0)
        return NULL;
    return strdup(k);
}

/*
 * Build dst's version 1 from src's manifest sm: the same checkpoint chunks
 * and overlay, named from dst; pages carried inline by src's manifests
 * are copied into one segment of dst (seg_key, already built in seg/locs).
 */
static dsq_rc build_manifest(struct dsq_db *dst, const struct dsq_manifest *sm,
                             const char *base, const char *inc,
                             const char *txn_id, const char *seg_key,
                             const struct dsq_page_loc *locs, size_t n_locs,
                             struct dsq_manifest *m)
{
    memset(m, 0, sizeof(*m));
    m->format_version = DSQ_MANIFEST_FORMAT;
    memcpy(m->incarnation, inc, 33);
    m->version = 1;
    m->parent = 0;
    m->page_size = sm->page_size;
    m->page_count = sm->page_count;
    memcpy(m->writer_id, dst->writer_id, 33);
    memcpy(m->txn_id, txn_id, 33);
    m->time_ms = dsq_now_ms();
    m->page1 = DSQ_PAGE1_CHANGED;
    if (sm->page_count) {
        m->write_set = malloc(sizeof(*m->write_set));
        if (!m->write_set)
            return DSQ_ENOMEM;
        m->write_set[0] = (struct dsq_range){1, sm->page_count};
        m->n_write = 1;
    }
    if (seg_key) {
        m->created = calloc(1, sizeof(char *));
        if (!m->created || !(m->created[0] = strdup(seg_key)))
            return DSQ_ENOMEM;
        m->n_created = 1;
    }
    m->ckpt_version = sm->n_chunks ? 1 : 0;
    m->ckpt_page_limit = sm->n_chunks ? sm->ckpt_page_limit : 0;
    m->chunk_pages = sm->chunk_pages;
    if (sm->n_chunks) {
        m->chunks = calloc(sm->n_chunks, sizeof(*m->chunks));
        if (!m->chunks)
            return DSQ_ENOMEM;
        for (size_t i = 0; i < sm->n_chunks; i++) {
            m->chunks[i] = sm->chunks[i];
            m->chunks[i].key = rebased(base, sm->chunks[i].key);
            if (!m->chunks[i].key)
                return DSQ_ENOMEM;
            m->n_chunks = i + 1;
        }
    }
    /* overlay: src's segment keys rebased, inline pages to seg_key */
    m->segments = calloc(sm->n_segments + 1, sizeof(char *));
    m->overlay = calloc(sm->n_overlay + 1, sizeof(*m->overlay));
    if (!m->segments || !m->overlay)
        return DSQ_ENOMEM;
    uint32_t seg_idx = 0;
    if (seg_key) {
        if (!(m->segments[0] = strdup(seg_key)))
            return DSQ_ENOMEM;
        m->n_segments = 1;
    }
    size_t *map = calloc(sm->n_segments + 1, sizeof(*map));
    if (!map)
        return DSQ_ENOMEM;
    for (size_t i = 0; i < sm->n_segments; i++) {
        if (dsq__is_inline_key(sm->segments[i])) {
            map[i] = SIZE_MAX;
            continue;
        }
        if (!(m->segments[m->n_segments] = rebased(base, sm->segments[i]))) {
            free(map);
            return DSQ_ENOMEM;
        }
        map[i] = m->n_segments++;
    }
    size_t li = 0;
    for (size_t i = 0; i < sm->n_overlay; i++) {
        struct dsq_page_loc l = sm->overlay[i];
        if (map[l.seg] == SIZE_MAX) {
            while (li < n_locs && locs[li].pgno < l.pgno)
                li++;
            if (li == n_locs || locs[li].pgno != l.pgno) {
                free(map);
                return DSQ_EINVAL;
            }
            l = locs[li];
            l.seg = seg_idx;
        } else {
            l.seg = (uint32_t)map[l.seg];
        }
        m->overlay[m->n_overlay++] = l;
    }
    free(map);
    return DSQ_OK;
}

static int loc_pgno_cmp(const void *a, const void *b)
{
    const struct dsq_page_loc *x = a, *y = b;
    return x->pgno < y->pgno ? -1 : x->pgno > y->pgno;
}

dsq_rc dsq_db_fork(struct dsq_db *src, uint64_t version, struct dsq_db *dst,
                   struct dsq_fork_info *info, struct dsq_err *e)
{
    struct dsq_snap *s = NULL;
    struct dsq_seg_builder *sb = NULL;
    struct dsq_buf segbuf, mbuf, pinbuf;
    struct dsq_page_loc *locs = NULL;
    size_t n_locs = 0;
    struct dsq_manifest m;
    char base[DSQ_KEY_MAX], pin_rel[96], seg_key[96] = "";
    int pinned = 0, seg_up = 0, built = 0;
    uint8_t *page = NULL;
    dsq_buf_init(&segbuf, 1u << 30);
    dsq_buf_init(&mbuf, DSQ_MANIFEST_MAX_BYTES);
    dsq_buf_init(&pinbuf, 4096);
    memset(info, 0, sizeof(*info));
    dsq_rc rc = DSQ_OK;
    if (src->st != dst->st)
        return dsq_err_set(e, DSQ_EUNSUPPORTED,
                           "a fork names its source's objects: both must be "
                           "in the same store");
    if (relative_base(dst->prefix, src->prefix, base, sizeof(base)) != 0)
        return dsq_err_set(e, DSQ_EINVAL,
                           "cannot fork %s into %s: one lies inside the other",
                           src->prefix, dst->prefix);
    uint64_t dv = 0;
    rc = dsq_db_latest(dst, &dv, e);
    if (rc == DSQ_OK && dv)
        rc = dsq_err_set(e, DSQ_EEXIST,
                         "%s already has %llu version(s): a fork makes a new "
                         "database",
                         dst->prefix, (unsigned long long)dv);
    /* a fork reads no page-table chunk: no cold-open chunk warm-up (it
       would cost a GET per 16 MB of the source) */
    pthread_mutex_lock(&src->mu);
    src->chunks_warmed = 1;
    pthread_mutex_unlock(&src->mu);
    if (rc == DSQ_OK)
        rc = dsq_db_snapshot(src, version, &s, e);
    if (rc != DSQ_OK)
        goto out;
    if (!s->m) {
        rc = dsq_err_set(e, DSQ_ENOTFOUND, "%s has no versions", src->prefix);
        goto out;
    }
    const struct dsq_manifest *sm = s->m;
    info->version = sm->version;
    char id[33], txn_id[33];
    dsq_random_hex32(id);
    dsq_random_hex32(txn_id);
    /* 1. the pin, then the floor (C11) */
    struct dsq_forkpin pin = {.version = sm->version, .time_ms = dsq_now_ms()};
    snprintf(pin_rel, sizeof(pin_rel), FORK_PINS "%s.json", id);
    char full[DSQ_KEY_MAX];
    dsq__full_key(src, pin_rel, full, sizeof(full));
    rc = dsq_forkpin_encode(&pin, &pinbuf, e);
    if (rc == DSQ_OK)
        rc = dsq_store_put(src->st, full, pinbuf.data, pinbuf.len,
                           DSQ_PUT_CREATE, NULL, NULL, e);
    STAT_ADD(src, store_puts, 1);
    if (rc != DSQ_OK)
        goto out;
    pinned = 1;
    uint64_t floor = 0;
    rc = dsq__read_gc_floor(src, &floor, NULL, e);
    if (rc == DSQ_OK && floor > sm->version)
        rc = dsq_err_set(e, DSQ_ENOTFOUND,
                         "%s: version %llu is below the gc floor (%llu): "
                         "gc is removing it",
                         src->prefix, (unsigned long long)sm->version,
                         (unsigned long long)floor);
    if (rc != DSQ_OK)
        goto out;
    /* 2. pages carried inline by the source's manifests: copied (they
       live in manifests that are the source's own; at most what its
       overlay holds since its checkpoint) */
    rc = dsq_seg_builder_new(sm->page_size, src->compress, txn_id, &sb);
    if (rc != DSQ_OK)
        goto out;
    page = malloc(sm->page_size);
    if (!page) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < sm->n_overlay && rc == DSQ_OK; i++) {
        if (!dsq__is_inline_key(sm->segments[sm->overlay[i].seg]))
            continue;
        rc = dsq_snap_read_page(s, sm->overlay[i].pgno, page, e);
        if (rc == DSQ_OK)
            rc = dsq_seg_builder_add(sb, sm->overlay[i].pgno, page);
    }
    if (rc != DSQ_OK)
        goto out;
    if (dsq_seg_builder_count(sb) > 0) {
        char hex[33];
        dsq_random_hex32(hex);
        snprintf(seg_key, sizeof(seg_key), "segments/%s.seg", hex);
        rc = dsq_seg_builder_finish(sb, &segbuf, &locs, &n_locs);
        if (rc == DSQ_OK)
            qsort(locs, n_locs, sizeof(*locs), loc_pgno_cmp);
        if (rc == DSQ_OK)
            rc = dsq__obj_put(dst, seg_key, segbuf.data, segbuf.len, e);
        if (rc != DSQ_OK)
            goto out;
        seg_up = 1;
        info->pages_copied = n_locs;
        info->bytes_copied = segbuf.len;
    }
    /* 3. version 1, create-only */
    rc = build_manifest(dst, sm, base, id, txn_id, seg_key[0] ? seg_key : NULL,
                        locs, n_locs, &m);
    built = 1;
    if (rc == DSQ_EINVAL)
        rc = dsq_err_set(e, DSQ_ECORRUPT,
                         "%s: version %llu's inline pages do not match its "
                         "overlay",
                         src->prefix, (unsigned long long)sm->version);
    if (rc == DSQ_OK)
        rc = dsq_manifest_encode(&m, &mbuf, e);
    if (rc != DSQ_OK)
        goto out;
    char rel[64];
    dsq_manifest_key(1, rel);
    dsq__full_key(dst, rel, full, sizeof(full));
    rc = dsq_store_put(dst->st, full, mbuf.data, mbuf.len, DSQ_PUT_CREATE, NULL,
                       NULL, e);
    STAT_ADD(dst, store_puts, 1);
    if (rc == DSQ_EPRECOND)
        rc = dsq_err_set(e, DSQ_EEXIST,
                         "%s: another writer created version 1 meanwhile",
                         dst->prefix);
    if (rc != DSQ_OK)
        goto out;
    dsq__note_latest(dst, 1);
    pinned = seg_up = 0; /* they belong to the fork now */
    memcpy(info->fork_id, id, 33);
    info->pages = sm->page_count;
    info->page_size = sm->page_size;
out:
    if (seg_up) {
        struct dsq_err ig;
        dsq__obj_del(dst, seg_key, &ig);
    }
    if (pinned) {
        struct dsq_err ig;
        dsq__obj_del(src, pin_rel, &ig);
    }
    if (built) {
        struct dsq_manifest *mp = malloc(sizeof(*mp));
        if (mp) { /* dsq_manifest_free frees the struct too */
            *mp = m;
            dsq_manifest_free(mp);
        }
    }
    free(page);
    free(locs);
    dsq_seg_builder_free(sb);
    dsq_buf_cleanup(&segbuf);
    dsq_buf_cleanup(&mbuf);
    dsq_buf_cleanup(&pinbuf);
    dsq_snap_release(s);
    return rc;
}
