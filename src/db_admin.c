/*
 * db_admin.c - the engine's maintenance and inspection: the version list,
 * verify, recovery scan, gc with its floor (C9), fault points, and the
 * calls the FUSE daemon uses to stay coherent (changes between versions,
 * dropping unchanged pages; freshness checks are in db_fresh.c).
 *
 * Layer: services (the engine; shares db_int.h with db.c, db_commit.c and
 * db_fresh.c).  Thread-safety as db.h states for struct dsq_db.
 */
#include "db_int.h"

/* ------------------------------------------------------------------ */
/* 8. admin                                                             */
/* ------------------------------------------------------------------ */

static int vlist_fn(const char *rel, const struct dsq_objinfo *info, void *arg)
{
    struct dsq_vlist *l = arg;
    uint64_t v;
    (void)info;
    if (dsq_manifest_key_parse(rel, &v) != 0)
        return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        uint64_t *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return 1;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = v;
    return 0;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

dsq_rc dsq__list_versions(struct dsq_db *db, struct dsq_vlist *l,
                          struct dsq_err *e)
{
    memset(l, 0, sizeof(*l));
    dsq_rc rc = dsq__list_rel(db, "manifests/", NULL, vlist_fn, l, e);
    if (rc == DSQ_OK && l->n)
        qsort(l->v, l->n, sizeof(*l->v), u64_cmp);
    return rc;
}

dsq_rc dsq_db_versions(struct dsq_db *db, dsq_version_fn fn, void *arg,
                       struct dsq_err *e)
{
    struct dsq_vlist l;
    dsq_rc rc = dsq__list_versions(db, &l, e);
    for (size_t i = 0; rc == DSQ_OK && i < l.n; i++) {
        struct dsq_manifest *m = NULL;
        rc = dsq__load_manifest(db, l.v[i], &m, e);
        if (rc != DSQ_OK)
            break;
        struct dsq_version_info vi = {.version = m->version,
                                      .time_ms = m->time_ms,
                                      .page_size = m->page_size,
                                      .page_count = m->page_count,
                                      .ckpt_version = m->ckpt_version};
        for (size_t k = 0; k < m->n_write; k++)
            vi.pages_written += m->write_set[k].count;
        memcpy(vi.writer_id, m->writer_id, 33);
        memcpy(vi.txn_id, m->txn_id, 33);
        dsq_manifest_free(m);
        if (fn(&vi, arg))
            break;
    }
    free(l.v);
    return rc;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strlist_sort_unique(struct strlist *l)
{
    if (l->n == 0)
        return;
    qsort(l->v, l->n, sizeof(*l->v), str_cmp);
    size_t k = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->v[i], l->v[k - 1]) == 0)
            free(l->v[i]);
        else
            l->v[k++] = l->v[i];
    }
    l->n = k;
}

static int strlist_has(const struct strlist *l, const char *s)
{
    if (l->n == 0)
        return 0;
    return bsearch(&s, l->v, l->n, sizeof(*l->v), str_cmp) != NULL;
}

static int loc_pgno_cmp(const void *k, const void *el)
{
    uint32_t p = *(const uint32_t *)k;
    const struct dsq_page_loc *x = el;
    return p < x->pgno ? -1 : p > x->pgno;
}

/* Decoded segment page tables, by key (for verify). */
struct segidx {
    char *key;
    struct dsq_segment *seg; /* NULL if it failed to load */
};

static int segidx_cmp(const void *a, const void *b)
{
    return strcmp(((const struct segidx *)a)->key,
                  ((const struct segidx *)b)->key);
}

static void problem(struct dsq_verify_report *rep, dsq_problem_fn fn, void *arg,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void problem(struct dsq_verify_report *rep, dsq_problem_fn fn, void *arg,
                    const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rep->problems++;
    dsq_log(DSQ_LOG_ERR, "verify", "%s", msg);
    if (fn)
        fn(msg, arg);
}

/* Is loc (in segment key) a page the decoded segment really holds? */
static int loc_in_segment(const struct dsq_segment *s,
                          const struct dsq_page_loc *loc, uint32_t page_size)
{
    if (!s || s->page_size != page_size)
        return 0;
    size_t lo = 0, hi = s->n_pages;
    while (lo < hi) { /* pages are laid out in ascending offset order */
        size_t mid = lo + (hi - lo) / 2;
        const struct dsq_page_loc *p = &s->pages[mid];
        if (p->offset == loc->offset)
            return p->pgno == loc->pgno && p->length == loc->length &&
                   p->codec == loc->codec && p->checksum == loc->checksum;
        if (p->offset < loc->offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static const struct segidx *segidx_find(const struct segidx *v, size_t n,
                                        const char *key)
{
    struct segidx k = {.key = (char *)key};
    return n ? bsearch(&k, v, n, sizeof(*v), segidx_cmp) : NULL;
}

/*
 * Cross-checks of one manifest that its codec cannot make (they need the
 * meaning of the fields, not their syntax): the write set lies within the
 * database, says page 1 was written iff the page-1 field does, and every
 * page it names within the database is in the overlay, in a segment this
 * version created or in this manifest itself (format 2: inline) (unless
 * this version is a checkpoint, whose pages are in chunks).
 */
static void manifest_checks(struct dsq_db *db, struct dsq_verify_report *rep,
                            dsq_problem_fn fn, void *arg,
                            const struct dsq_manifest *m)
{
    unsigned long long v = (unsigned long long)m->version;
    if (m->n_write > 0) {
        const struct dsq_range *last = &m->write_set[m->n_write - 1];
        uint64_t end = (uint64_t)last->start + last->count - 1;
        if (end > m->page_count)
            problem(rep, fn, arg,
                    "%s version %llu: its write set reaches page %llu, past "
                    "its page_count %u",
                    db->prefix, v, (unsigned long long)end, m->page_count);
    }
    int wrote1 = dsq_ranges_contain(m->write_set, m->n_write, 1);
    if (wrote1 && m->page1 == DSQ_PAGE1_NONE)
        problem(rep, fn, arg,
                "%s version %llu: its write set holds page 1 but its page1 "
                "field says \"none\"",
                db->prefix, v);
    if (m->ckpt_version == m->version)
        return;
    /* the overlay segments this version created: each decided once */
    signed char *ours = calloc(m->n_segments + 1, 1);
    if (!ours)
        return;
    size_t io = 0;
    for (size_t r = 0; r < m->n_write; r++) {
        uint64_t first = m->write_set[r].start;
        uint64_t last = first + m->write_set[r].count - 1;
        if (last > m->page_count)
            last = m->page_count;
        for (uint64_t p = first; p <= last; p++) {
            while (io < m->n_overlay && m->overlay[io].pgno < p)
                io++;
            if (io == m->n_overlay || m->overlay[io].pgno != p) {
                problem(rep, fn, arg,
                        "%s version %llu: page %llu is in its write set but "
                        "not in its overlay",
                        db->prefix, v, (unsigned long long)p);
                free(ours);
                return;
            }
            uint32_t seg = m->overlay[io].seg;
            if (ours[seg] == 0) {
                ours[seg] = -1;
                for (size_t k = 0; k < m->n_created; k++)
                    if (strcmp(m->created[k], m->segments[seg]) == 0)
                        ours[seg] = 1;
                /* or carried by this manifest itself (format 2) */
                uint64_t mv;
                if (dsq_key_is_manifest(m->segments[seg], &mv) &&
                    mv == m->version)
                    ours[seg] = 1;
            }
            if (ours[seg] < 0) {
                problem(rep, fn, arg,
                        "%s version %llu: page %llu it wrote is in %s, a "
                        "segment it did not create",
                        db->prefix, v, (unsigned long long)p, m->segments[seg]);
                free(ours);
                return;
            }
        }
    }
    free(ours);
}

/*
 * Cross-checks of version m against version m->version - 1 (prev): a
 * version builds on its parent's checkpoint or is a checkpoint itself; a
 * checkpoint never changes (same chunks, its page limit only shrinks); a
 * changed page count is a page-1 change; and pages above both the
 * parent's page count and the size page 1 gives the database were written
 * by this version (no writer commits others; a VACUUM that shrinks the
 * file commits its pages first and its truncation as the next version,
 * so page_count may exceed the image, but not grow past it unwritten).
 */
static void chain_checks(struct dsq_db *db, struct dsq_verify_report *rep,
                         dsq_problem_fn fn, void *arg,
                         const struct dsq_manifest *prev,
                         const struct dsq_manifest *m, uint64_t image_bytes)
{
    unsigned long long v = (unsigned long long)m->version;
    if (m->ckpt_version != prev->ckpt_version &&
        m->ckpt_version != m->version) {
        problem(rep, fn, arg,
                "%s version %llu builds on checkpoint %llu, but its parent "
                "%llu on checkpoint %llu",
                db->prefix, v, (unsigned long long)m->ckpt_version,
                (unsigned long long)prev->version,
                (unsigned long long)prev->ckpt_version);
    } else if (m->ckpt_version == prev->ckpt_version) {
        int same = m->chunk_pages == prev->chunk_pages &&
                   m->n_chunks == prev->n_chunks &&
                   m->ckpt_page_limit <= prev->ckpt_page_limit;
        for (size_t k = 0; same && k < m->n_chunks; k++)
            same = m->chunks[k].index == prev->chunks[k].index &&
                   m->chunks[k].size == prev->chunks[k].size &&
                   m->chunks[k].checksum == prev->chunks[k].checksum &&
                   strcmp(m->chunks[k].key, prev->chunks[k].key) == 0;
        if (!same)
            problem(rep, fn, arg,
                    "%s version %llu: checkpoint %llu differs from what its "
                    "parent %llu says of it (chunks, chunk size or page "
                    "limit)",
                    db->prefix, v, (unsigned long long)m->ckpt_version,
                    (unsigned long long)prev->version);
    }
    if (m->page_count != prev->page_count && m->page1 != DSQ_PAGE1_CHANGED)
        problem(rep, fn, arg,
                "%s version %llu: page_count went from %u to %u but its page1 "
                "field does not say page 1 changed",
                db->prefix, v, prev->page_count, m->page_count);
    /* pages above both the parent's page count and the image page 1
       describes exist only if this version wrote them */
    uint64_t lo = (image_bytes + m->page_size - 1) / m->page_size;
    if (lo < prev->page_count)
        lo = prev->page_count;
    if (image_bytes && m->page_count > lo) {
        uint64_t p = lo + 1;
        for (size_t r = 0; r < m->n_write && p <= m->page_count; r++) {
            uint64_t first = m->write_set[r].start;
            uint64_t last = first + m->write_set[r].count - 1;
            if (first > p)
                break;
            if (last >= p)
                p = last + 1;
        }
        if (p <= m->page_count)
            problem(rep, fn, arg,
                    "%s version %llu: page_count grew from %u to %u, past "
                    "the %llu bytes page 1 gives the database, and page "
                    "%llu was never written",
                    db->prefix, v, prev->page_count, m->page_count,
                    (unsigned long long)image_bytes, (unsigned long long)p);
    }
}

/* Segments versions created, with the transaction that created them. */
struct createdrec {
    char *key; /* owned */
    char txn_id[33];
    uint64_t version;
};

struct createdlist {
    struct createdrec *v;
    size_t n, cap;
};

static dsq_rc add_created(struct createdlist *l, const char *key,
                          const struct dsq_manifest *m)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct createdrec *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return DSQ_ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    struct createdrec *r = &l->v[l->n];
    r->key = strdup(key);
    if (!r->key)
        return DSQ_ENOMEM;
    memcpy(r->txn_id, m->txn_id, 33);
    r->version = m->version;
    l->n++;
    return DSQ_OK;
}

static int createdrec_cmp(const void *a, const void *b)
{
    return strcmp(((const struct createdrec *)a)->key,
                  ((const struct createdrec *)b)->key);
}

struct chunkrec {
    struct dsq_chunk_ref ref; /* key owned */
    uint32_t page_size, chunk_pages;
    struct dsq_chunk *chunk; /* NULL if it failed */
};

static int chunkrec_cmp(const void *a, const void *b)
{
    return strcmp(((const struct chunkrec *)a)->ref.key,
                  ((const struct chunkrec *)b)->ref.key);
}

/* The pages one manifest carries inline (verify). */
struct selfrec {
    struct dsq_page_loc *locs; /* owned; sorted by pgno */
    size_t n;
};

/*
 * Check the pages manifest m carries inline (each decodes and matches its
 * checksum) and remember their locations in *sr.
 */
static dsq_rc verify_inline(struct dsq_db *db, const struct dsq_manifest *m,
                            struct selfrec *sr, struct dsq_verify_report *rep,
                            dsq_problem_fn fn, void *arg)
{
    char own[64], full[DSQ_KEY_MAX];
    uint8_t *page = malloc(m->page_size ? m->page_size : 1);
    uint8_t stored[DSQ_STORED_PAGE_MAX];
    memset(sr, 0, sizeof(*sr));
    dsq_manifest_key(m->version, own);
    dsq__full_key(db, own, full, sizeof(full));
    sr->locs = malloc((m->n_overlay ? m->n_overlay : 1) * sizeof(*sr->locs));
    if (!page || !sr->locs) {
        free(page);
        return DSQ_ENOMEM;
    }
    for (size_t k = 0; k < m->n_overlay; k++) {
        const struct dsq_page_loc *l = &m->overlay[k];
        if (strcmp(m->segments[l->seg], own) != 0)
            continue;
        struct dsq_err pe;
        size_t at = l->offset - DSQ_MANIFEST_INLINE_OFFSET;
        /* the codec checked the base64 and the tiling */
        if (dsq_b64_decode(m->inline_text + at, dsq_b64_len(l->length), stored,
                           l->length) != 0 ||
            dsq_page_decode(stored, l->length, l, m->page_size, page, full,
                            &pe) != DSQ_OK) {
            problem(rep, fn, arg, "%s: inline page %u does not decode", full,
                    l->pgno);
            continue;
        }
        rep->pages_checked++;
        sr->locs[sr->n++] = *l;
    }
    free(page);
    return DSQ_OK;
}

dsq_rc dsq_db_verify(struct dsq_db *db, struct dsq_verify_report *rep,
                     dsq_problem_fn report_fn, dsq_progress_fn progress,
                     void *arg, struct dsq_err *e)
{
    struct dsq_vlist l;
    struct selfrec *selfs = NULL;
    struct dsq_manifest *prev = NULL; /* pass 1: the version before */
    struct strlist segkeys = {0};
    struct chunkrec *crs = NULL;
    size_t n_crs = 0, cap_crs = 0;
    struct segidx *segs = NULL;
    size_t n_segs = 0;
    struct strlist txnids = {0};
    struct createdlist created = {0};
    struct dsq_buf buf;
    dsq_rc rc;

    dsq_buf_init(&buf, OBJ_CAP);
    memset(rep, 0, sizeof(*rep));
    rc = dsq__list_versions(db, &l, e);
    if (rc != DSQ_OK)
        return rc;
    rep->versions = l.n;
    if (l.n == 0)
        goto out;
    rep->first_version = l.v[0];
    rep->last_version = l.v[l.n - 1];
    uint64_t total = l.n * 2, done = 0;
    selfs = calloc(l.n, sizeof(*selfs));
    if (!selfs) {
        rc = DSQ_ENOMEM;
        goto out;
    }

    /* pass 1: manifests decode, chain is contiguous and consistent;
       collect objects */
    for (size_t i = 0; i < l.n; i++) {
        if (i > 0 && l.v[i] != l.v[i - 1] + 1)
            problem(rep, report_fn, arg, "%s: versions %llu..%llu are missing",
                    db->prefix, (unsigned long long)l.v[i - 1] + 1,
                    (unsigned long long)l.v[i] - 1);
        struct dsq_manifest *m = NULL;
        struct dsq_err me;
        dsq_err_clear(&me);
        dsq_rc mrc = dsq__load_manifest(db, l.v[i], &m, &me);
        if (progress)
            progress(++done, total, arg);
        if (mrc == DSQ_ECORRUPT || mrc == DSQ_EUNSUPPORTED ||
            mrc == DSQ_ENOTFOUND) {
            problem(rep, report_fn, arg, "%s", dsq_err_text(&me, mrc));
            continue;
        }
        if (mrc != DSQ_OK) {
            rc = mrc;
            if (e)
                *e = me;
            goto out;
        }
        uint64_t image = 0;
        dsq_err_clear(&me);
        mrc = dsq__manifest_check_image(db, m, &image, &me);
        if (mrc == DSQ_ECORRUPT || mrc == DSQ_EMISSING) {
            problem(rep, report_fn, arg, "%s", dsq_err_text(&me, mrc));
        } else if (mrc != DSQ_OK) {
            dsq_manifest_free(m);
            rc = mrc;
            if (e)
                *e = me;
            goto out;
        }
        manifest_checks(db, rep, report_fn, arg, m);
        if (prev && prev->version + 1 == m->version)
            chain_checks(db, rep, report_fn, arg, prev, m, image);
        rc = dsq__strlist_add(&txnids, m->txn_id);
        for (size_t k = 0; rc == DSQ_OK && k < m->n_created; k++)
            if (!strncmp(m->created[k], "segments/", 9))
                rc = add_created(&created, m->created[k], m);
        for (size_t k = 0; rc == DSQ_OK && k < m->n_segments; k++)
            if (!dsq__is_inline_key(m->segments[k]))
                rc = dsq__strlist_add(&segkeys, m->segments[k]);
        if (rc == DSQ_OK && m->inline_text)
            rc = verify_inline(db, m, &selfs[i], rep, report_fn, arg);
        for (size_t k = 0; rc == DSQ_OK && k < m->n_chunks; k++) {
            if (n_crs == cap_crs) {
                size_t nc = cap_crs ? cap_crs * 2 : 64;
                struct chunkrec *nv = realloc(crs, nc * sizeof(*nv));
                if (!nv) {
                    rc = DSQ_ENOMEM;
                    break;
                }
                crs = nv;
                cap_crs = nc;
            }
            crs[n_crs].ref = m->chunks[k];
            crs[n_crs].ref.key = strdup(m->chunks[k].key);
            crs[n_crs].page_size = m->page_size;
            crs[n_crs].chunk_pages = m->chunk_pages;
            crs[n_crs].chunk = NULL;
            if (!crs[n_crs].ref.key)
                rc = DSQ_ENOMEM;
            else
                n_crs++;
        }
        dsq_manifest_free(prev);
        prev = m;
        if (rc != DSQ_OK)
            goto out;
    }
    dsq_manifest_free(prev);
    prev = NULL;
    /* a transaction commits once: two versions with one txn_id are a
       replayed or copied manifest */
    if (txnids.n > 1) {
        qsort(txnids.v, txnids.n, sizeof(*txnids.v), str_cmp);
        for (size_t k = 1; k < txnids.n; k++)
            if (!strcmp(txnids.v[k], txnids.v[k - 1]) &&
                (k == 1 || strcmp(txnids.v[k], txnids.v[k - 2])))
                problem(rep, report_fn, arg,
                        "%s: transaction %s is recorded by more than one "
                        "version",
                        db->prefix, txnids.v[k]);
    }
    /* chunks: size, checksum, decode (each distinct key once) */
    if (n_crs)
        qsort(crs, n_crs, sizeof(*crs), chunkrec_cmp);
    {
        size_t k = 0;
        for (size_t i = 0; i < n_crs; i++) {
            if (k > 0 && strcmp(crs[i].ref.key, crs[k - 1].ref.key) == 0) {
                if (crs[i].ref.checksum != crs[k - 1].ref.checksum ||
                    crs[i].ref.size != crs[k - 1].ref.size)
                    problem(rep, report_fn, arg,
                            "%s/%s is referenced with different checksums",
                            db->prefix, crs[i].ref.key);
                free(crs[i].ref.key);
                continue;
            }
            crs[k++] = crs[i];
        }
        n_crs = k;
    }
    for (size_t i = 0; i < n_crs; i++) {
        struct dsq_err ce;
        dsq_err_clear(&ce);
        dsq_rc crc = dsq__chunk_fetch(db, &crs[i].ref, crs[i].page_size,
                                      crs[i].chunk_pages, &crs[i].chunk, &ce);
        if (crc == DSQ_ECORRUPT || crc == DSQ_EMISSING) {
            problem(rep, report_fn, arg, "%s", dsq_err_text(&ce, crc));
            continue;
        }
        if (crc != DSQ_OK) {
            rc = crc;
            if (e)
                *e = ce;
            goto out;
        }
        rep->chunks++;
        for (size_t k = 0; rc == DSQ_OK && k < crs[i].chunk->n_segments; k++)
            rc = dsq__strlist_add(&segkeys, crs[i].chunk->segments[k]);
        if (rc != DSQ_OK)
            goto out;
    }
    /* segments: every page decodes and matches its checksum */
    strlist_sort_unique(&segkeys);
    segs = calloc(segkeys.n + 1, sizeof(*segs));
    if (!segs) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    total = l.n + segkeys.n;
    done = l.n;
    for (size_t i = 0; i < segkeys.n; i++) {
        segs[n_segs].key = segkeys.v[i];
        segs[n_segs].seg = NULL;
        n_segs++;
        char full[DSQ_KEY_MAX];
        dsq__full_key(db, segkeys.v[i], full, sizeof(full));
        dsq_buf_reset(&buf);
        struct dsq_err se;
        dsq_err_clear(&se);
        dsq_rc src = dsq__obj_get(db, segkeys.v[i], 0, 0, &buf, NULL, &se);
        if (progress)
            progress(++done, total, arg);
        if (src == DSQ_ENOTFOUND) {
            problem(rep, report_fn, arg, "segment %s is missing", full);
            continue;
        }
        if (src != DSQ_OK) {
            rc = src;
            if (e)
                *e = se;
            goto out;
        }
        src = dsq_seg_decode(buf.data, buf.len, full, &segs[i].seg, &se);
        if (src != DSQ_OK) {
            problem(rep, report_fn, arg, "%s", dsq_err_text(&se, src));
            continue;
        }
        rep->segments++;
        rep->pages_checked += segs[i].seg->n_pages;
    }
    /* a segment a version created was written by that version's
       transaction */
    if (created.n)
        qsort(created.v, created.n, sizeof(*created.v), createdrec_cmp);
    for (size_t i = 0; i < created.n; i++) {
        const struct segidx *si = segidx_find(segs, n_segs, created.v[i].key);
        if (si && si->seg && strcmp(si->seg->txn_id, created.v[i].txn_id))
            problem(rep, report_fn, arg,
                    "%s/%s was created by version %llu (transaction %s) but "
                    "says it was written by transaction %s",
                    db->prefix, created.v[i].key,
                    (unsigned long long)created.v[i].version,
                    created.v[i].txn_id, si->seg->txn_id);
    }
    /* pass 2: every location named points at that very page */
    for (size_t i = 0; i < n_crs; i++) {
        const struct dsq_chunk *c = crs[i].chunk;
        for (size_t k = 0; c && k < c->n_entries; k++) {
            const struct segidx *si =
                segidx_find(segs, n_segs, c->segments[c->entries[k].seg]);
            if (!si || !si->seg)
                continue; /* already reported */
            if (!loc_in_segment(si->seg, &c->entries[k], crs[i].page_size)) {
                problem(rep, report_fn, arg,
                        "%s/%s: page %u is not where it says in %s", db->prefix,
                        crs[i].ref.key, c->entries[k].pgno, si->key);
                break;
            }
        }
    }
    for (size_t i = 0; i < l.n; i++) {
        struct dsq_manifest *m = NULL;
        struct dsq_err me;
        if (dsq__load_manifest(db, l.v[i], &m, &me) != DSQ_OK)
            continue; /* reported in pass 1 */
        for (size_t k = 0; k < m->n_overlay; k++) {
            const char *key = m->segments[m->overlay[k].seg];
            uint64_t mv;
            if (dsq_key_is_manifest(key, &mv)) {
                /* carried inline by version mv: it must be there */
                const uint64_t *at =
                    bsearch(&mv, l.v, l.n, sizeof(*l.v), u64_cmp);
                const struct selfrec *sr = at ? &selfs[at - l.v] : NULL;
                const struct dsq_page_loc *p =
                    sr ? bsearch(&m->overlay[k].pgno, sr->locs, sr->n,
                                 sizeof(*sr->locs), loc_pgno_cmp)
                       : NULL;
                if (!at)
                    problem(rep, report_fn, arg,
                            "version %llu: page %u is carried by version "
                            "%llu, which is missing",
                            (unsigned long long)m->version, m->overlay[k].pgno,
                            (unsigned long long)mv);
                else if (mv != m->version &&
                         (!p || p->offset != m->overlay[k].offset ||
                          p->length != m->overlay[k].length ||
                          p->codec != m->overlay[k].codec ||
                          p->checksum != m->overlay[k].checksum))
                    problem(rep, report_fn, arg,
                            "version %llu: page %u is not where it says in "
                            "version %llu",
                            (unsigned long long)m->version, m->overlay[k].pgno,
                            (unsigned long long)mv);
                continue;
            }
            const struct segidx *si = segidx_find(segs, n_segs, key);
            if (!si || !si->seg)
                continue;
            if (!loc_in_segment(si->seg, &m->overlay[k], m->page_size)) {
                problem(rep, report_fn, arg,
                        "version %llu: page %u is not where it says in %s",
                        (unsigned long long)m->version, m->overlay[k].pgno,
                        si->key);
                break;
            }
        }
        dsq_manifest_free(m);
    }
out:
    if (rc == DSQ_OK && rep->problems)
        rc = dsq_err_set(e, DSQ_ECORRUPT, "%s: %llu problem(s) found",
                         db->prefix, (unsigned long long)rep->problems);
    dsq_manifest_free(prev);
    dsq__strlist_free(&txnids);
    for (size_t i = 0; i < created.n; i++)
        free(created.v[i].key);
    free(created.v);
    for (size_t i = 0; i < n_segs; i++)
        dsq_seg_free(segs[i].seg);
    free(segs);
    for (size_t i = 0; selfs && i < l.n; i++)
        free(selfs[i].locs);
    free(selfs);
    dsq__strlist_free(&segkeys);
    for (size_t i = 0; i < n_crs; i++) {
        free(crs[i].ref.key);
        dsq_chunk_free(crs[i].chunk);
    }
    free(crs);
    free(l.v);
    dsq_buf_cleanup(&buf);
    return rc;
}

struct orphan_scan {
    struct strlist *refs;
    uint64_t now, grace;
    struct strlist found;
    uint64_t *sizes, *mtimes;
    size_t cap;
};

static int orphan_fn(const char *rel, const struct dsq_objinfo *info, void *arg)
{
    struct orphan_scan *s = arg;
    if (strlist_has(s->refs, rel))
        return 0;
    if (info->mtime_ms + s->grace > s->now)
        return 0; /* may belong to a commit in flight */
    if (s->found.n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        uint64_t *a = realloc(s->sizes, nc * sizeof(*a));
        if (a)
            s->sizes = a;
        uint64_t *b = realloc(s->mtimes, nc * sizeof(*b));
        if (b)
            s->mtimes = b;
        if (!a || !b)
            return 1;
        s->cap = nc;
    }
    s->sizes[s->found.n] = info->size;
    s->mtimes[s->found.n] = info->mtime_ms;
    return dsq__strlist_add(&s->found, rel) != DSQ_OK;
}

/*
 * Add to refs every object manifest m names: what it created, its overlay
 * segments, its chunks and the segments those chunks name (each chunk is
 * read once; chunkkeys remembers which).
 */
static dsq_rc collect_refs(struct dsq_db *db, const struct dsq_manifest *m,
                           struct strlist *refs, struct strlist *chunkkeys,
                           struct dsq_err *e)
{
    dsq_rc rc = DSQ_OK;
    for (size_t k = 0; rc == DSQ_OK && k < m->n_created; k++)
        rc = dsq__strlist_add(refs, m->created[k]);
    for (size_t k = 0; rc == DSQ_OK && k < m->n_segments; k++)
        rc = dsq__strlist_add(refs, m->segments[k]);
    for (size_t k = 0; rc == DSQ_OK && k < m->n_chunks; k++) {
        rc = dsq__strlist_add(refs, m->chunks[k].key);
        if (rc != DSQ_OK || strlist_has(chunkkeys, m->chunks[k].key))
            continue;
        struct dsq_chunk *c = NULL;
        rc = dsq__chunk_fetch(db, &m->chunks[k], m->page_size, m->chunk_pages,
                              &c, e);
        for (size_t j = 0; rc == DSQ_OK && j < c->n_segments; j++)
            rc = dsq__strlist_add(refs, c->segments[j]);
        dsq_chunk_free(c);
        if (rc == DSQ_OK)
            rc = dsq__strlist_add(chunkkeys, m->chunks[k].key);
        strlist_sort_unique(chunkkeys);
    }
    return rc;
}

dsq_rc dsq_db_recovery_scan(struct dsq_db *db, uint64_t grace_ms, int do_delete,
                            dsq_orphan_fn fn, void *arg, uint64_t *n_orphans,
                            struct dsq_err *e)
{
    struct dsq_vlist l;
    struct strlist refs = {0};
    struct strlist chunkkeys = {0};
    struct orphan_scan s = {0};
    dsq_rc rc = dsq__list_versions(db, &l, e);
    /* everything any manifest (or chunk it references) names */
    for (size_t i = 0; rc == DSQ_OK && i < l.n; i++) {
        struct dsq_manifest *m = NULL;
        rc = dsq__load_manifest(db, l.v[i], &m, e);
        if (rc != DSQ_OK)
            break;
        rc = collect_refs(db, m, &refs, &chunkkeys, e);
        dsq_manifest_free(m);
    }
    strlist_sort_unique(&refs);
    s.refs = &refs;
    s.now = dsq_now_ms();
    s.grace = grace_ms;
    if (rc == DSQ_OK)
        rc = dsq__list_rel(db, "segments/", NULL, orphan_fn, &s, e);
    if (rc == DSQ_OK)
        rc = dsq__list_rel(db, "pagetables/", NULL, orphan_fn, &s, e);
    for (size_t i = 0; rc == DSQ_OK && i < s.found.n; i++) {
        int deleted = 0;
        if (do_delete) {
            rc = dsq__obj_del(db, s.found.v[i], e);
            deleted = rc == DSQ_OK;
        }
        if (fn)
            fn(s.found.v[i], s.sizes[i], s.mtimes[i], deleted, arg);
    }
    if (rc == DSQ_OK && n_orphans)
        *n_orphans = s.found.n;
    dsq__strlist_free(&s.found);
    free(s.sizes);
    free(s.mtimes);
    dsq__strlist_free(&refs);
    dsq__strlist_free(&chunkkeys);
    free(l.v);
    return rc;
}

struct debris_count {
    dsq_orphan_fn fn;
    void *arg;
    size_t skip; /* the database prefix and '/': names are relative */
    uint64_t n;
};

static void debris_fn(const char *name, uint64_t size, uint64_t mtime_ms,
                      int deleted, void *arg)
{
    struct debris_count *c = arg;
    c->n++;
    if (c->fn)
        c->fn(strlen(name) >= c->skip ? name + c->skip : name, size, mtime_ms,
              deleted, c->arg);
}

dsq_rc dsq_db_debris_scan(struct dsq_db *db, uint64_t grace_ms, int do_delete,
                          dsq_orphan_fn fn, void *arg, uint64_t *n_found,
                          struct dsq_err *e)
{
    static const char *const dirs[] = {"", "manifests/", "segments/",
                                       "pagetables/"};
    struct debris_count c = {fn, arg,
                             db->prefix[0] ? strlen(db->prefix) + 1 : 0, 0};
    uint64_t now = dsq_now_ms();
    uint64_t before = now > grace_ms ? now - grace_ms : 0;
    dsq_rc rc = DSQ_OK;
    for (size_t i = 0; rc == DSQ_OK && i < sizeof(dirs) / sizeof(dirs[0]);
         i++) {
        char dir[DSQ_KEY_MAX];
        if (db->prefix[0])
            snprintf(dir, sizeof(dir), "%s/%s", db->prefix, dirs[i]);
        else
            snprintf(dir, sizeof(dir), "%s", dirs[i]);
        rc = dsq_store_debris(db->st, dir, before, do_delete, debris_fn, &c, e);
    }
    if (rc == DSQ_OK && n_found)
        *n_found = c.n;
    return rc;
}

void dsq_fault_point(const char *name)
{
    const char *want = getenv("DSQLFS_FAULT");
    if (!want || strcmp(want, name) != 0)
        return;
    static atomic_int hits;
    const char *skip = getenv("DSQLFS_FAULT_SKIP");
    int n = atomic_fetch_add(&hits, 1);
    if (skip && n < (int)strtol(skip, NULL, 10))
        return;
    dsq_log(DSQ_LOG_CRIT, "fault", "fault point %s reached: exiting", name);
    _exit(86);
}

/* ---- gc ---- */

uint64_t dsq_db_gc_min_retention_ms(void)
{
#ifdef DSQ_FAULTS
    const char *t = getenv("DSQLFS_TEST_MIN_AGE_MS");
    if (t && *t) {
        char *end;
        unsigned long long v = strtoull(t, &end, 10);
        if (!*end)
            return v;
    }
#endif
    return DSQ_GC_MIN_RETENTION_MS;
}

dsq_rc dsq_db_gc(struct dsq_db *db, uint64_t keep_versions, uint64_t keep_ms,
                 int dry_run, struct dsq_gc_report *rep, struct dsq_err *e)
{
    return dsq_db_gc_pinned(db, keep_versions, keep_ms, 0, dry_run, rep, e);
}

dsq_rc dsq_db_gc_pinned(struct dsq_db *db, uint64_t keep_versions,
                        uint64_t keep_ms, uint64_t pinned, int dry_run,
                        struct dsq_gc_report *rep, struct dsq_err *e)
{
    struct dsq_vlist l = {0};
    struct strlist dead = {0}, live = {0}, chunkkeys = {0};
    struct dsq_objinfo floor_info;
    uint64_t floor_old = 0;
    dsq_rc rc;

    memset(rep, 0, sizeof(*rep));
    if (keep_versions < 1)
        keep_versions = 1;
    uint64_t min_ms = dsq_db_gc_min_retention_ms();
    if (keep_ms < min_ms)
        return dsq_err_set(e, DSQ_EINVAL,
                           "gc keeps every version younger than %llu s at "
                           "least (writers rely on it)",
                           (unsigned long long)(min_ms / 1000));
    rc = dsq__read_gc_floor(db, &floor_old, &floor_info, e);
    if (rc == DSQ_OK)
        rc = dsq__list_versions(db, &l, e);
    if (rc != DSQ_OK || l.n == 0)
        goto out;
    uint64_t head = l.v[l.n - 1];
    uint64_t floor = head >= keep_versions ? head - keep_versions + 1 : 1;
    /* also keep every version committed within keep_ms */
    uint64_t cutoff = dsq_now_ms() > keep_ms ? dsq_now_ms() - keep_ms : 0;
    for (size_t i = 0; i < l.n && l.v[i] < floor; i++) {
        struct dsq_manifest *m = NULL;
        rc = dsq__load_manifest(db, l.v[i], &m, e);
        if (rc != DSQ_OK)
            goto out;
        int young = m->time_ms >= cutoff;
        dsq_manifest_free(m);
        if (young) {
            floor = l.v[i];
            break;
        }
    }
    if (pinned && floor > pinned)
        floor = pinned; /* a reader or writer still uses it (and so what
                           it reads, below) */
    /* C11: a fork names the objects of the version it pins */
    uint64_t minpin = UINT64_MAX;
    rc = dsq__fork_pins_min(db, &minpin, NULL, e);
    if (rc != DSQ_OK)
        goto out;
    if (floor > minpin)
        floor = minpin;
    /* a kept version may read pages that an older manifest carries
       inline (until a checkpoint moves them): keep that one too, and
       what it reads in turn */
    for (uint64_t upto = head + 1; floor < upto;) {
        uint64_t lowest = floor;
        for (size_t i = 0; i < l.n && l.v[i] < upto; i++) {
            if (l.v[i] < floor)
                continue;
            struct dsq_manifest *m = NULL;
            rc = dsq__load_manifest(db, l.v[i], &m, e);
            if (rc != DSQ_OK)
                goto out;
            for (size_t k = 0; k < m->n_segments; k++) {
                uint64_t mv;
                if (dsq_key_is_manifest(m->segments[k], &mv) && mv < lowest)
                    lowest = mv;
            }
            dsq_manifest_free(m);
        }
        upto = floor;
        floor = lowest;
    }
    uint64_t keep_from = floor;
    if (floor < floor_old)
        floor = floor_old;
    /* the floor (gc.json) never goes back; what is removed stops at the
       oldest pin even below an older floor */
    uint64_t limit = minpin < floor ? keep_from : floor;
    rep->floor = limit;
    rep->head = head;
    /* what the doomed versions created, and what the kept ones use */
    for (size_t i = 0; i < l.n; i++) {
        struct dsq_manifest *m = NULL;
        rc = dsq__load_manifest(db, l.v[i], &m, e);
        if (rc != DSQ_OK)
            goto out;
        if (l.v[i] < limit) {
            rep->versions_removed++;
            for (size_t k = 0; rc == DSQ_OK && k < m->n_created; k++)
                rc = dsq__strlist_add(&dead, m->created[k]);
        } else {
            rc = collect_refs(db, m, &live, &chunkkeys, e);
        }
        dsq_manifest_free(m);
        if (rc != DSQ_OK)
            goto out;
    }
    strlist_sort_unique(&dead);
    strlist_sort_unique(&live);
    for (size_t i = 0; i < dead.n; i++)
        if (!strlist_has(&live, dead.v[i]))
            rep->objects_removed++;
    if (dry_run || rep->versions_removed == 0)
        goto out;
    /* C9: the floor is durable before any manifest goes */
    if (floor > floor_old) {
        struct dsq_gcfloor g = {.floor = floor, .time_ms = dsq_now_ms()};
        struct dsq_buf buf;
        char key[DSQ_KEY_MAX];
        dsq_buf_init(&buf, 4096);
        dsq__full_key(db, "gc.json", key, sizeof(key));
        rc = dsq_gcfloor_encode(&g, &buf, e);
        if (rc == DSQ_OK)
            rc = dsq_store_put(
                db->st, key, buf.data, buf.len,
                floor_info.etag[0] ? DSQ_PUT_IF_MATCH : DSQ_PUT_CREATE,
                floor_info.etag[0] ? floor_info.etag : NULL, NULL, e);
        dsq_buf_cleanup(&buf);
        if (rc == DSQ_EPRECOND)
            rc = dsq_err_set(e, DSQ_EBUSY,
                             "%s: another gc moved the floor meanwhile; run "
                             "gc again",
                             db->prefix);
        if (rc != DSQ_OK)
            goto out;
    }
    /* C11: a fork that pinned a version before the floor was written
       (and so read the old floor) is seen now */
    uint64_t minpin2 = UINT64_MAX;
    rc = dsq__fork_pins_min(db, &minpin2, NULL, e);
    if (rc == DSQ_OK && minpin2 < limit)
        rc = dsq_err_set(e, DSQ_EBUSY,
                         "%s: a fork pinned version %llu meanwhile; nothing "
                         "was removed, run gc again",
                         db->prefix, (unsigned long long)minpin2);
    if (rc != DSQ_OK)
        goto out;
    /* manifests first (oldest first), then what only they used */
    for (size_t i = 0; i < l.n && l.v[i] < limit; i++) {
        char rel[64];
        dsq_manifest_key(l.v[i], rel);
        rc = dsq__obj_del(db, rel, e);
        if (rc != DSQ_OK)
            goto out;
    }
    for (size_t i = 0; i < dead.n; i++)
        if (!strlist_has(&live, dead.v[i])) {
            rc = dsq__obj_del(db, dead.v[i], e);
            if (rc != DSQ_OK)
                goto out;
        }
out:
    dsq__strlist_free(&dead);
    dsq__strlist_free(&live);
    dsq__strlist_free(&chunkkeys);
    free(l.v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* 9. for the FUSE daemon: changes, rollbacks                           */
/* ------------------------------------------------------------------ */

dsq_rc dsq_db_head_after(struct dsq_db *db, uint64_t known, uint64_t *latest,
                         struct dsq_err *e)
{
    char rel[64], key[DSQ_KEY_MAX];
    struct dsq_objinfo info;
    dsq_manifest_key(known + 1, rel);
    dsq__full_key(db, rel, key, sizeof(key));
    uint64_t depth = dsq__req_begin(db);
    dsq_rc rc = dsq_store_head(db->st, key, &info, e);
    dsq__req_end(db, depth, "HEAD", key);
    STAT_ADD(db, store_heads, 1);
    if (rc == DSQ_ENOTFOUND) {
        /* versions are created in order, so known is the newest, unless gc
           removed known+1 (and known) since a listing last said so: it
           only removes versions older than its minimum age, so a listing
           younger than half of that (a margin for clock skew, as C9's) is
           proof enough; an older one is renewed */
        pthread_mutex_lock(&db->mu);
        uint64_t listed = db->listed_ms;
        pthread_mutex_unlock(&db->mu);
        if (known == 0 ||
            listed + dsq_db_gc_min_retention_ms() / 2 > dsq_now_ms()) {
            *latest = known;
            return DSQ_OK;
        }
        uint64_t v = 0;
        rc = dsq_db_latest(db, &v, e);
        if (rc == DSQ_OK)
            *latest = v;
        return rc;
    }
    if (rc != DSQ_OK)
        return rc;
    uint64_t v = 0;
    rc = dsq_db_latest(db, &v, e);
    if (rc != DSQ_OK)
        return rc;
    *latest = v > known ? v : known + 1; /* the listing may lag the HEAD */
    return DSQ_OK;
}

static int prange_cmp(const void *a, const void *b)
{
    const struct dsq_page_range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static dsq_rc prange_add(struct dsq_changes *c, size_t *cap,
                         const struct dsq_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c->n_ranges == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            struct dsq_page_range *nv = realloc(c->ranges, nc * sizeof(*nv));
            if (!nv)
                return DSQ_ENOMEM;
            c->ranges = nv;
            *cap = nc;
        }
        c->ranges[c->n_ranges++] =
            (struct dsq_page_range){r[i].start, r[i].count};
    }
    return DSQ_OK;
}

dsq_rc dsq_db_changes(struct dsq_db *db, uint64_t from, uint64_t to,
                      struct dsq_changes *out, struct dsq_err *e)
{
    struct dsq_changes c = {0};
    size_t cap = 0;
    dsq_rc rc = DSQ_OK;
    uint32_t prev_count = 0;
    if (from > to)
        return dsq_err_set(e, DSQ_EINVAL, "changes from %llu to %llu",
                           (unsigned long long)from, (unsigned long long)to);
    if (from > 0) {
        struct dsq_snap *s0 = NULL;
        rc = dsq_db_snapshot(db, from, &s0, e);
        if (rc != DSQ_OK)
            return rc;
        prev_count = dsq_snap_page_count(s0);
        c.page_count = prev_count;
        dsq_snap_release(s0);
    }
    for (uint64_t v = from + 1; v <= to && rc == DSQ_OK; v++) {
        struct dsq_snap *x = NULL;
        rc = dsq_db_snapshot(db, v, &x, e);
        if (rc != DSQ_OK)
            break;
        const struct dsq_manifest *m = x->m;
        rc = prange_add(&c, &cap, m->write_set, m->n_write);
        if (rc == DSQ_OK)
            rc = prange_add(&c, &cap, m->freed_set, m->n_freed);
        if (m->page1 == DSQ_PAGE1_CHANGED || m->page_count != prev_count)
            c.page1_changed = 1;
        prev_count = m->page_count;
        c.page_count = m->page_count;
        dsq_snap_release(x);
    }
    if (rc != DSQ_OK) {
        dsq_changes_cleanup(&c);
        return rc;
    }
    if (c.n_ranges > 1) {
        qsort(c.ranges, c.n_ranges, sizeof(*c.ranges), prange_cmp);
        size_t k = 0;
        for (size_t i = 1; i < c.n_ranges; i++) {
            struct dsq_page_range *a = &c.ranges[k], *b = &c.ranges[i];
            uint64_t aend = (uint64_t)a->first + a->count;
            if (b->first <= aend) {
                uint64_t bend = (uint64_t)b->first + b->count;
                if (bend > aend)
                    a->count = (uint32_t)(bend - a->first);
            } else {
                c.ranges[++k] = *b;
            }
        }
        c.n_ranges = k + 1;
    }
    *out = c;
    return DSQ_OK;
}

void dsq_changes_cleanup(struct dsq_changes *c)
{
    if (!c)
        return;
    free(c->ranges);
    memset(c, 0, sizeof(*c));
}

dsq_rc dsq_txn_drop_unchanged(struct dsq_txn *t, size_t *remaining,
                              struct dsq_err *e)
{
    uint32_t *pgnos = NULL;
    size_t n = 0, ndrop = 0;
    uint8_t *a = NULL, *b = NULL;
    uint8_t *drop = NULL;
    struct dsq_pgbuf *nb = NULL;
    dsq_rc rc = DSQ_OK;
    if ((t->flags & DSQ_TXN_STREAM) || !t->buf || t->finished)
        goto done;
    uint32_t limit =
        t->base_count < t->low_water ? t->base_count : t->low_water;
    rc = dsq_pgbuf_pgnos(t->buf, &pgnos, &n);
    if (rc != DSQ_OK)
        goto out;
    a = malloc(t->page_size);
    b = malloc(t->page_size);
    drop = calloc(n ? n : 1, 1);
    if (!a || !b || !drop) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && pgnos[i] <= limit; i++) {
        rc = dsq_pgbuf_get(t->buf, pgnos[i], a, e);
        if (rc == DSQ_OK)
            rc = dsq_snap_read_page(t->snap, pgnos[i], b, e);
        if (rc != DSQ_OK)
            goto out;
        if (memcmp(a, b, t->page_size) == 0) {
            drop[i] = 1;
            ndrop++;
        }
    }
    if (ndrop == 0)
        goto done;
    rc = dsq_pgbuf_new(t->page_size, t->db->txn_mem, t->db->spill_dir, &nb);
    if (rc != DSQ_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (drop[i])
            continue;
        rc = dsq_pgbuf_get(t->buf, pgnos[i], a, e);
        if (rc == DSQ_OK)
            rc = dsq_pgbuf_put(nb, pgnos[i], a, e);
        if (rc != DSQ_OK)
            goto out;
    }
    dsq_pgbuf_free(t->buf);
    t->buf = nb;
    nb = NULL;
done:
    if (remaining)
        *remaining = dsq_txn_dirty_pages(t);
out:
    dsq_pgbuf_free(nb);
    free(pgnos);
    free(a);
    free(b);
    free(drop);
    return rc;
}
