/*
 * db_hot.c - the hot pages of a database: page 1, the pages of
 * sqlite_schema and the root and interior pages of every b-tree, the
 * pages any first query walks through before its leaf.  A writer (import,
 * dsqlfs hot, a maintenance round) copies them into one object,
 * P/hot.seg (a segment whose txn names the page map it was written for,
 * docs/format.md section 6a), and a cold open fetches it alongside its
 * first manifest, so that a point query waits for its leaf only instead
 * of one request per b-tree level.
 *
 * hot.seg is a hint: it is rewritten in place and may be of any older
 * version.  When the manifest's map digest is the one hot.seg names, its
 * copies are that version's pages and go into a table the reads consult
 * before any lookup (no chunk fetched for them).  Otherwise a copy of p is
 * used only when the location of p in the manifest or a chunk has the
 * copy's page number and checksum; it then goes into the page cache
 * under that location.
 *
 * Layer: services (the engine; shares db_int.h).  Locking: a fetch runs
 * on its own thread, joined by dsq__hot_finish; the table (db->hot) and
 * the counters are under db->mu; the writer walks a pinned snapshot.
 */
#include "db_int.h"
#include "sqlitetree.h"

#define HOT_KEY "hot.seg"
/* What a hot object may hold: pages (decoded) and bytes (stored). */
#define HOT_MAX_BYTES (16u << 20)
#define HOT_MAX_PAGES 8192u

/* ---- the identity of a version's page map ---- */

static void put64(struct dsq_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    dsq_buf_append(b, x, 8);
}

/*
 * XXH3-64 of where every page of m is: page size and count, the
 * checkpoint's chunk references and every overlay entry.  Two manifests
 * of one database with the same digest serve the same bytes for every
 * page (objects are immutable, chunk keys are never reused).
 */
static uint64_t map_digest(const struct dsq_manifest *m)
{
    struct dsq_buf b;
    dsq_buf_init(&b, 1u << 30);
    put64(&b, m->page_size);
    put64(&b, m->page_count);
    put64(&b, m->ckpt_page_limit);
    put64(&b, m->chunk_pages);
    for (size_t i = 0; i < m->n_chunks; i++) {
        const struct dsq_chunk_ref *r = &m->chunks[i];
        put64(&b, r->index);
        dsq_buf_append(&b, r->key, strlen(r->key) + 1);
        put64(&b, r->size);
        put64(&b, r->checksum);
    }
    put64(&b, UINT64_MAX);
    for (size_t i = 0; i < m->n_overlay; i++) {
        const struct dsq_page_loc *l = &m->overlay[i];
        put64(&b, l->pgno);
        dsq_buf_append(&b, m->segments[l->seg],
                       strlen(m->segments[l->seg]) + 1);
        put64(&b, l->offset);
        put64(&b, l->length);
        put64(&b, l->checksum);
    }
    uint64_t d =
        dsq_object_checksum(b.data ? b.data : (const uint8_t *)"", b.len);
    dsq_buf_cleanup(&b);
    return d;
}

/*
 * The hot pages of one version whose page map hot.seg was written for
 * (same digest): served before any lookup, so neither chunks nor pages
 * are fetched for them.  Guarded by db->mu.
 */
struct dsq__hot_table {
    uint64_t version, epoch;
    uint32_t page_size;
    size_t n;
    uint32_t *pg; /* sorted */
    uint8_t *data;
};

void dsq__hot_free(struct dsq__hot_table *t)
{
    if (!t)
        return;
    free(t->pg);
    free(t->data);
    free(t);
}

static int u32_cmp(const void *a, const void *b);

static int loc_pgno_cmp(const void *a, const void *b)
{
    const struct dsq_page_loc *x = a, *y = b;
    return x->pgno < y->pgno ? -1 : x->pgno > y->pgno;
}

int dsq__hot_page(struct dsq_db *db, const struct dsq_manifest *m,
                  uint32_t pgno, void *out)
{
    int hit = 0;
    pthread_mutex_lock(&db->mu);
    struct dsq__hot_table *t = db->hot;
    if (t && t->version == m->version && t->epoch == db->epoch &&
        t->page_size == m->page_size) {
        const uint32_t *p =
            bsearch(&pgno, t->pg, t->n, sizeof(*t->pg), u32_cmp);
        if (p) {
            memcpy(out, t->data + (size_t)(p - t->pg) * t->page_size,
                   t->page_size);
            db->stats.cache_hits++;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&db->mu);
    return hit;
}

/* hot.seg's txn: the digest of the map it was written for, then the
   version (information only). */
static void hot_txn(const struct dsq_manifest *m, uint64_t version,
                    char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)map_digest(m),
             (unsigned long long)version);
}

/* All of seg's pages as the table of m's version (seg was written for
   m's map).  Returns how many. */
static size_t hot_table_set(struct dsq_db *db, const struct dsq_manifest *m,
                            const struct dsq_segment *seg, const uint8_t *data)
{
    struct dsq__hot_table *t = calloc(1, sizeof(*t));
    if (!t)
        return 0;
    const uint32_t ps = m->page_size;
    t->version = m->version;
    t->page_size = ps;
    t->pg = malloc((seg->n_pages + 1) * sizeof(*t->pg));
    t->data = malloc((seg->n_pages + 1) * (size_t)ps);
    if (!t->pg || !t->data) {
        dsq__hot_free(t);
        return 0;
    }
    /* sorted by page number: the segment's order is free */
    struct dsq_page_loc *e = malloc((seg->n_pages + 1) * sizeof(*e));
    if (!e) {
        dsq__hot_free(t);
        return 0;
    }
    if (seg->n_pages)
        memcpy(e, seg->pages, seg->n_pages * sizeof(*e));
    qsort(e, seg->n_pages, sizeof(*e), loc_pgno_cmp);
    for (size_t k = 0; k < seg->n_pages; k++) {
        const struct dsq_page_loc *c = &e[k];
        struct dsq_err ignore;
        if (c->pgno > m->page_count ||
            dsq_page_decode_quiet(data + c->offset, c->length, c, ps,
                                  t->data + t->n * (size_t)ps, HOT_KEY,
                                  &ignore) != DSQ_OK)
            continue;
        t->pg[t->n++] = c->pgno;
    }
    free(e);
    size_t n = t->n;
    pthread_mutex_lock(&db->mu);
    t->epoch = db->epoch;
    struct dsq__hot_table *old = db->hot;
    db->hot = t;
    db->stats.hot_pages += n;
    pthread_mutex_unlock(&db->mu);
    dsq__hot_free(old);
    return n;
}

/* ---- reading: a cold open ---- */

struct dsq__hot_fetch {
    struct dsq_db *db;
    pthread_t th;
    struct dsq_buf buf;
    dsq_rc rc;
    struct dsq_err err;
    atomic_int sent; /* sent with the manifest's GET, not after it */
};

static void *hot_get(void *arg)
{
    struct dsq__hot_fetch *h = arg;
    struct dsq_db *db = h->db;
    char key[DSQ_KEY_MAX];
    dsq__full_key(db, HOT_KEY, key, sizeof(key));
    dsq_err_clear(&h->err);
    /* one attempt, no retry: a hint never holds up the cold open */
    dsq__go_mark(&h->sent);
    uint64_t depth = dsq__req_begin(db);
    h->rc = dsq_store_get(db->st, key, 0, 0, &h->buf, NULL, &h->err);
    dsq__req_end(db, depth, "GET", key);
    dsq__go_done(&h->sent);
    pthread_mutex_lock(&db->mu);
    db->stats.store_gets++;
    if (h->rc == DSQ_OK)
        db->stats.bytes_read += h->buf.len;
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

struct dsq__hot_fetch *dsq__hot_start(struct dsq_db *db)
{
    struct dsq__hot_fetch *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->db = db;
    dsq_buf_init(&h->buf, HOT_MAX_BYTES + (1u << 20));
    atomic_init(&h->sent, 0);
    if (pthread_create(&h->th, NULL, hot_get, h) != 0) {
        dsq_buf_cleanup(&h->buf);
        free(h);
        return NULL;
    }
    dsq__go_wait(&h->sent);
    return h;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The indexes of the chunks that hold the pages of seg, sorted, unique. */
static size_t hot_chunks(const struct dsq_manifest *m,
                         const struct dsq_segment *seg, uint32_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < seg->n_pages; i++) {
        uint32_t p = seg->pages[i].pgno;
        if (p <= m->ckpt_page_limit && m->chunk_pages)
            out[n++] = (p - 1) / m->chunk_pages;
    }
    qsort(out, n, sizeof(*out), u32_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || out[k - 1] != out[i])
            out[k++] = out[i];
    return k;
}

void dsq__hot_finish(struct dsq_db *db, struct dsq__hot_fetch *h,
                     const struct dsq_manifest *m)
{
    struct dsq_segment *seg = NULL;
    uint32_t *idx = NULL;
    uint8_t *page = NULL;
    if (h) {
        pthread_join(h->th, NULL);
        struct dsq_err e;
        dsq_err_clear(&e);
        char full[DSQ_KEY_MAX];
        dsq__full_key(db, HOT_KEY, full, sizeof(full));
        if (h->rc == DSQ_OK && m &&
            dsq_seg_decode(h->buf.data, h->buf.len, full, &seg, &e) != DSQ_OK) {
            /* a hint only: say so, read the pages as if it were absent */
            dsq_log(DSQ_LOG_WARNING, "db", "%s ignored: %s", full,
                    dsq_err_text(&e, e.rc));
            seg = NULL;
        } else if (h->rc != DSQ_OK && h->rc != DSQ_ENOTFOUND) {
            dsq_log(DSQ_LOG_INFO, "db", "%s not read: %s", full,
                    dsq_err_text(&h->err, h->rc));
        }
    }
    if (!m)
        goto out;
    if (seg && (seg->page_size != m->page_size || seg->n_pages > HOT_MAX_PAGES))
        goto warm_only;
    if (seg) {
        char want[33];
        hot_txn(m, 0, want);
        if (strncmp(seg->txn_id, want, 16) == 0) {
            /* written for this very map: every copy is this version's
               page; the chunks come when a lookup needs one */
            hot_table_set(db, m, seg, h->buf.data);
            goto out;
        }
    }
    /* the chunks the hot pages need, in the same wave as the rest */
    if (seg && (idx = malloc((seg->n_pages + 1) * sizeof(*idx))) != NULL) {
        dsq__warm_chunks(db, m, NULL, 0); /* all, if they fit */
        size_t n = hot_chunks(m, seg, idx);
        dsq__warm_chunks(db, m, idx, n); /* else those (none if cached) */
    } else {
    warm_only:
        dsq__warm_chunks(db, m, NULL, 0);
        goto out;
    }
    page = malloc(m->page_size);
    uint64_t used = 0;
    for (size_t i = 0; page && i < seg->n_pages; i++) {
        const struct dsq_page_loc *c = &seg->pages[i];
        struct dsq_page_loc loc;
        char segkey[DSQ_KEY_MAX];
        if (c->pgno > m->page_count ||
            !dsq__locate_cached(db, m, c->pgno, &loc, segkey, sizeof(segkey)) ||
            loc.pgno != c->pgno || loc.checksum != c->checksum)
            continue; /* not this version's page */
        struct dsq_err ignore;
        if (dsq_page_decode_quiet(h->buf.data + c->offset, c->length, c,
                                  m->page_size, page, HOT_KEY,
                                  &ignore) != DSQ_OK)
            continue;
        dsq__pc_insert(db, segkey, &loc, page, m->page_size);
        used++;
    }
    STAT_ADD(db, hot_pages, used);
out:
    free(page);
    free(idx);
    dsq_seg_free(seg);
    if (h) {
        dsq_buf_cleanup(&h->buf);
        free(h);
    }
}

/* ---- writing: walk the b-trees of a snapshot ---- */

struct hot_set {
    uint32_t *pg;   /* pages kept, in the order found (top levels first) */
    uint8_t *data;  /* their images */
    size_t n, max;  /* max: the budget */
    uint32_t *seen; /* every page read, sorted after each level */
    size_t n_seen;
};

static int seen(const struct hot_set *h, uint32_t p)
{
    return h->n_seen &&
           bsearch(&p, h->seen, h->n_seen, sizeof(*h->seen), u32_cmp) != NULL;
}

/* Read pages pg[0..n) of s into out (n pages), in parallel. */
static dsq_rc read_set(struct dsq_snap *s, const uint32_t *pg, size_t n,
                       uint8_t *out, struct dsq_err *e)
{
    struct dsq_db *db = s->db;
    const uint32_t ps = s->m->page_size;
    char **keys = calloc(n ? n : 1, sizeof(*keys));
    struct dsq_page_loc *locs = calloc(n ? n : 1, sizeof(*locs));
    uint32_t *where = calloc(n ? n : 1, sizeof(*where));
    size_t k = 0;
    dsq_rc rc = keys && locs && where ? DSQ_OK : DSQ_ENOMEM;
    for (size_t i = 0; rc == DSQ_OK && i < n; i++) {
        char segkey[DSQ_KEY_MAX];
        int found;
        rc = dsq__locate(db, s->m, pg[i], &locs[k], segkey, sizeof(segkey),
                         &found, e);
        memset(out + i * ps, 0, ps);
        if (rc != DSQ_OK || !found)
            continue;
        if (!(keys[k] = strdup(segkey)))
            rc = DSQ_ENOMEM;
        else
            where[k++] = (uint32_t)i;
    }
    uint8_t *tmp = rc == DSQ_OK ? malloc((k ? k : 1) * (size_t)ps) : NULL;
    if (rc == DSQ_OK && !tmp)
        rc = DSQ_ENOMEM;
    if (rc == DSQ_OK)
        rc = dsq__read_locs(db, k, keys, locs, ps, s->m->incarnation, tmp, e);
    for (size_t i = 0; rc == DSQ_OK && i < k; i++)
        memcpy(out + (size_t)where[i] * ps, tmp + i * ps, ps);
    for (size_t i = 0; i < k; i++)
        free(keys[i]);
    free(tmp);
    free(keys);
    free(locs);
    free(where);
    return rc;
}

/* One page to visit: its number and the tree it is in (0: the schema). */
struct visit {
    uint32_t pg;
    uint32_t tree; /* 0 sqlite_schema, else 1 + the root's page number */
    int root;
};

struct vlist {
    struct visit *v;
    size_t n, cap;
};

static int visit_cmp(const void *a, const void *b)
{
    const struct visit *x = a, *y = b;
    return x->pg < y->pg ? -1 : x->pg > y->pg;
}

static int vadd(struct vlist *l, uint32_t pg, uint32_t tree, int root)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        struct visit *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (struct visit){pg, tree, root};
    return 0;
}

static int add_seen(struct hot_set *h, const struct vlist *l)
{
    uint32_t *nv = realloc(h->seen, (h->n_seen + l->n + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    h->seen = nv;
    for (size_t i = 0; i < l->n; i++)
        h->seen[h->n_seen++] = l->v[i].pg;
    qsort(h->seen, h->n_seen, sizeof(*h->seen), u32_cmp);
    return 0;
}

static int keep(struct hot_set *h, uint32_t pg, const uint8_t *img, uint32_t ps)
{
    if (h->n >= h->max)
        return 0;
    h->pg[h->n] = pg;
    memcpy(h->data + h->n * (size_t)ps, img, ps);
    h->n++;
    return 1;
}

/*
 * Walk level by level from page 1: every page of sqlite_schema is kept,
 * and of the other b-trees the roots and the interior pages.  A b-tree's
 * leaves are all at one depth, so before reading a tree's next level one
 * page of it is read: a leaf ends that tree's walk.
 */
static dsq_rc walk(struct dsq_snap *s, struct hot_set *h, struct dsq_err *e)
{
    const uint32_t ps = s->m->page_size;
    const uint32_t count = s->m->page_count;
    struct vlist cur = {0}, next = {0}, probe = {0};
    uint8_t *img = NULL;
    uint32_t *links = malloc((ps / 2 + 2) * sizeof(*links));
    uint32_t usable = 0;
    dsq_rc rc = links ? DSQ_OK : DSQ_ENOMEM;
    if (rc == DSQ_OK && vadd(&cur, 1, 0, 1) != 0)
        rc = DSQ_ENOMEM;
    while (rc == DSQ_OK && cur.n && h->n < h->max) {
        /* each page once: sorted by number, without those seen before */
        qsort(cur.v, cur.n, sizeof(*cur.v), visit_cmp);
        size_t u = 0;
        for (size_t i = 0; i < cur.n; i++)
            if ((u == 0 || cur.v[u - 1].pg != cur.v[i].pg) &&
                !seen(h, cur.v[i].pg))
                cur.v[u++] = cur.v[i];
        cur.n = u;
        if (cur.n == 0)
            break;
        free(img);
        img = malloc(cur.n * (size_t)ps);
        if (!img || add_seen(h, &cur) != 0) {
            rc = DSQ_ENOMEM;
            break;
        }
        uint32_t *pg = malloc(cur.n * sizeof(*pg));
        if (!pg) {
            rc = DSQ_ENOMEM;
            break;
        }
        for (size_t i = 0; i < cur.n; i++)
            pg[i] = cur.v[i].pg;
        rc = read_set(s, pg, cur.n, img, e);
        free(pg);
        if (rc != DSQ_OK)
            break;
        if (usable == 0) { /* page 1 was the first read */
            if (dsq_sqlite_page_size(img, ps) != ps || img[20] >= ps - 480)
                break; /* not a SQLite database: nothing is hot */
            usable = ps - img[20];
        }
        next.n = 0;
        for (size_t i = 0; i < cur.n && h->n < h->max; i++) {
            const struct visit *v = &cur.v[i];
            const uint8_t *p = img + i * (size_t)ps;
            size_t nl;
            int kind;
            dsq_sqlite_page_links(p, v->pg, ps, usable, v->tree == 0, links,
                                  ps / 2 + 2, &nl, &kind);
            int interior = kind == 2 || kind == 5;
            if (v->tree == 0 || v->root || interior)
                keep(h, v->pg, p, ps);
            for (size_t k = 0; k < nl; k++) {
                uint32_t c = links[k];
                if (c == 0 || c > count || seen(h, c))
                    continue;
                int r;
                if (v->tree == 0 && !interior) /* a table's root */
                    r = vadd(&next, c, 1 + c, 1);
                else if (v->tree == 0)
                    r = vadd(&next, c, 0, 0);
                else
                    r = vadd(&next, c, v->tree, 0);
                if (r != 0)
                    rc = DSQ_ENOMEM;
            }
        }
        /* one probe per tree whose next level is not known to be
           interior: the first page of it */
        probe.n = 0;
        for (size_t i = 0; rc == DSQ_OK && i < next.n; i++) {
            const struct visit *v = &next.v[i];
            if (v->tree == 0 || v->root)
                continue;
            int have = 0;
            for (size_t k = 0; k < probe.n && !have; k++)
                have = probe.v[k].tree == v->tree;
            if (!have && vadd(&probe, v->pg, v->tree, 0) != 0)
                rc = DSQ_ENOMEM;
        }
        if (rc == DSQ_OK && probe.n) {
            uint8_t *pimg = malloc(probe.n * (size_t)ps);
            uint32_t *pg2 = malloc(probe.n * sizeof(*pg2));
            if (!pimg || !pg2)
                rc = DSQ_ENOMEM;
            for (size_t i = 0; rc == DSQ_OK && i < probe.n; i++)
                pg2[i] = probe.v[i].pg;
            if (rc == DSQ_OK)
                rc = read_set(s, pg2, probe.n, pimg, e);
            /* drop the trees whose probe is a leaf (or no b-tree page) */
            for (size_t i = 0; rc == DSQ_OK && i < probe.n; i++) {
                size_t nl;
                int kind;
                dsq_sqlite_page_links(pimg + i * (size_t)ps, probe.v[i].pg, ps,
                                      usable, 0, links, 0, &nl, &kind);
                probe.v[i].root = kind == 2 || kind == 5; /* interior */
            }
            size_t k = 0;
            for (size_t i = 0; rc == DSQ_OK && i < next.n; i++) {
                const struct visit *v = &next.v[i];
                int drop = 0;
                for (size_t j = 0; v->tree != 0 && !v->root && j < probe.n; j++)
                    if (probe.v[j].tree == v->tree)
                        drop = !probe.v[j].root;
                if (!drop)
                    next.v[k++] = *v;
            }
            if (rc == DSQ_OK)
                next.n = k;
            free(pimg);
            free(pg2);
        }
        struct vlist t = cur;
        cur = next;
        next = t;
    }
    free(img);
    free(links);
    free(cur.v);
    free(next.v);
    free(probe.v);
    return rc;
}

dsq_rc dsq_db_hot_write(struct dsq_db *db, struct dsq_snap *s, size_t *n_pages,
                        struct dsq_err *e)
{
    if (n_pages)
        *n_pages = 0;
    if (!s->m || s->m->page_count == 0)
        return DSQ_OK;
    const uint32_t ps = s->m->page_size;
    struct hot_set h = {0};
    h.max = HOT_MAX_BYTES / ps;
    if (h.max > HOT_MAX_PAGES)
        h.max = HOT_MAX_PAGES;
    h.pg = malloc(h.max * sizeof(*h.pg));
    h.data = malloc(h.max * (size_t)ps);
    struct dsq_seg_builder *b = NULL;
    struct dsq_buf out;
    dsq_buf_init(&out, HOT_MAX_BYTES + (1u << 20));
    struct dsq_page_loc *locs = NULL;
    size_t nlocs = 0;
    dsq_rc rc = h.pg && h.data ? DSQ_OK : DSQ_ENOMEM;
    if (rc == DSQ_OK) {
        dsq__warm_chunks(db, s->m, NULL, 0); /* the walk's lookups */
        rc = walk(s, &h, e);
    }
    if (rc == DSQ_OK && h.n == 0)
        goto out; /* not a SQLite database */
    char txn[33];
    hot_txn(s->m, s->version, txn);
    if (rc == DSQ_OK)
        rc = dsq_seg_builder_new(ps, db->compress, txn, &b);
    for (size_t i = 0; rc == DSQ_OK && i < h.n; i++)
        rc = dsq_seg_builder_add(b, h.pg[i], h.data + i * (size_t)ps);
    if (rc == DSQ_OK)
        rc = dsq_seg_builder_finish(b, &out, &locs, &nlocs);
    if (rc == DSQ_OK)
        rc = dsq__obj_put(db, HOT_KEY, out.data, out.len, e);
    if (rc == DSQ_OK && n_pages)
        *n_pages = h.n;
out:
    free(locs);
    dsq_seg_builder_free(b);
    dsq_buf_cleanup(&out);
    free(h.pg);
    free(h.data);
    free(h.seen);
    return rc;
}

/*
 * Rewrite hot.seg unless it was written for the newest version's map:
 * one ranged GET of its first bytes (the segment's txn field, section 3
 * of docs/format.md) tells.  *written (may be NULL): pages written, 0 if
 * it was current.
 */
dsq_rc dsq_db_hot_refresh(struct dsq_db *db, size_t *written, struct dsq_err *e)
{
    if (written)
        *written = 0;
    struct dsq_snap *s = NULL;
    dsq_rc rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, e);
    if (rc != DSQ_OK)
        return rc;
    if (!s->m) {
        dsq_snap_release(s);
        return DSQ_OK;
    }
    char want[33];
    hot_txn(s->m, s->version, want);
    struct dsq_buf head;
    dsq_buf_init(&head, 256);
    struct dsq_err ignore;
    dsq_err_clear(&ignore);
    int current = 0;
    if (dsq__obj_get(db, HOT_KEY, 0, 128, &head, NULL, &ignore) == DSQ_OK) {
        static const uint8_t tag[] = {0xa3, 't', 'x', 'n', 0xd9, 0x20};
        for (size_t i = 0; i + sizeof(tag) + 32 <= head.len && !current; i++)
            current = memcmp(head.data + i, tag, sizeof(tag)) == 0 &&
                      memcmp(head.data + i + sizeof(tag), want, 16) == 0;
    }
    dsq_buf_cleanup(&head);
    if (!current)
        rc = dsq_db_hot_write(db, s, written, e);
    dsq_snap_release(s);
    if (!current && rc == DSQ_OK) {
        /* the database may have been deleted while this was written: a
           hot.seg alone would make its prefix a directory and block the
           name (the deletion deletes hot.seg last as well) */
        struct dsq_vlist l;
        struct dsq_err ig;
        dsq_err_clear(&ig);
        if (dsq__list_versions(db, &l, &ig) == DSQ_OK && l.n == 0) {
            (void)dsq__obj_del(db, HOT_KEY, &ig);
            if (written)
                *written = 0;
        }
        free(l.v);
    }
    return rc;
}
