/*
 * sqlitetree.c - the b-tree each page of a SQLite database belongs to.
 * Layer: pure codec.  See sqlitetree.h.
 */
#include "sqlitetree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a walk: the pages read, the pages still to name ---- */

struct walk {
    uint32_t page_size, usable, page_count;
    dsq_page_reader read;
    void *ctx;
    size_t reads, max_reads;
    /* pages seen: open addressing, 0 = empty */
    uint32_t *seen;
    size_t seen_cap, seen_n; /* seen_n <= seen_cap / 2 */
    /* the targets, sorted, with their index in the caller's arrays */
    const uint32_t *pages;
    struct dsq_page_owner *out;
    size_t n, left;
    uint8_t *buf; /* one page */
};

/* 1 if p is new (now seen), 0 if seen before or the table is full (then
   the walk is past its budget anyway). */
static int seen_add(struct walk *w, uint32_t p)
{
    if (w->seen_n >= w->seen_cap / 2)
        return 0;
    size_t h = (size_t)(p * 2654435761u) & (w->seen_cap - 1);
    while (w->seen[h]) {
        if (w->seen[h] == p)
            return 0;
        h = (h + 1) & (w->seen_cap - 1);
    }
    w->seen[h] = p;
    w->seen_n++;
    return 1;
}

/* Name page p if it is a target. */
static void claim(struct walk *w, uint32_t p, const char *name,
                  const char *table, int is_index)
{
    for (size_t i = 0; i < w->n; i++) {
        if (w->pages[i] != p || w->out[i].name[0])
            continue;
        snprintf(w->out[i].name, sizeof(w->out[i].name), "%s", name);
        snprintf(w->out[i].table, sizeof(w->out[i].table), "%s", table);
        w->out[i].is_index = is_index;
        if (w->left)
            w->left--;
    }
}

/* Read page p into w->buf: 1 read, 0 out of budget or range, <0 error. */
static int get(struct walk *w, uint32_t p, dsq_rc *rc, struct dsq_err *e)
{
    if (p == 0 || p > w->page_count || w->reads >= w->max_reads)
        return 0;
    w->reads++;
    *rc = w->read(w->ctx, p, w->buf, e);
    return *rc == DSQ_OK ? 1 : -1;
}

/* SQLite's varint at p (at most 9 bytes, not past end): bytes used or 0. */
static size_t varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < 9; i++) {
        if (p + i >= end)
            return 0;
        if (i == 8) {
            x = (x << 8) | p[i];
            *v = x;
            return 9;
        }
        x = (x << 7) | (p[i] & 0x7f);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

/* ---- cells ---- */

/* Bytes of a payload of size P kept on the page (the rest overflows). */
static uint32_t local_size(const struct walk *w, uint64_t P, int table_leaf)
{
    uint32_t U = w->usable;
    uint32_t X = table_leaf ? U - 35 : ((U - 12) * 64 / 255) - 23;
    uint32_t M = ((U - 12) * 32 / 255) - 23;
    if (P <= X)
        return (uint32_t)P;
    uint32_t K = M + (uint32_t)((P - M) % (U - 4));
    return K <= X ? K : M;
}

/*
 * One cell of a page (w->buf, header at hdr) at offset off: its left
 * child (interior), its payload size and where its local part is, and its
 * first overflow page (0: none).  0, or -1 if it does not fit the page.
 */
struct cell {
    uint32_t child;
    uint64_t payload;
    uint32_t local_off, local_len;
    uint32_t overflow;
};

static int parse_cell(const struct walk *w, uint8_t type, uint32_t off,
                      struct cell *c)
{
    const uint8_t *b = w->buf, *end = w->buf + w->usable;
    memset(c, 0, sizeof(*c));
    if (off >= w->usable)
        return -1;
    const uint8_t *p = b + off;
    uint64_t v;
    size_t k;
    if (type == 2 || type == 5) { /* interior: a left child first */
        if (p + 4 > end)
            return -1;
        c->child = dsq_be32(p);
        p += 4;
        if (type == 5) /* interior table: a rowid, no payload */
            return varint(p, end, &v) ? 0 : -1;
    }
    if (!(k = varint(p, end, &c->payload)))
        return -1;
    p += k;
    if (type == 13) { /* leaf table: the rowid */
        if (!(k = varint(p, end, &v)))
            return -1;
        p += k;
    }
    c->local_len = local_size(w, c->payload, type == 13);
    c->local_off = (uint32_t)(p - b);
    if (p + c->local_len > end)
        return -1;
    if (c->local_len < c->payload) {
        if (p + c->local_len + 4 > end)
            return -1;
        c->overflow = dsq_be32(p + c->local_len);
    }
    return 0;
}

/* The header of a b-tree page (w->buf; page 1's starts at 100). */
static int page_header(const struct walk *w, uint32_t pgno, uint8_t *type,
                       uint32_t *ncells, uint32_t *cells_at, uint32_t *right)
{
    uint32_t h = pgno == 1 ? 100 : 0;
    const uint8_t *b = w->buf + h;
    *type = b[0];
    if (*type != 2 && *type != 5 && *type != 10 && *type != 13)
        return -1;
    *ncells = ((uint32_t)b[3] << 8) | b[4];
    int interior = *type == 2 || *type == 5;
    *right = interior ? dsq_be32(b + 8) : 0;
    *cells_at = h + (interior ? 12 : 8);
    if (*cells_at + 2 * *ncells > w->usable)
        return -1;
    return 0;
}

/* ---- the schema ---- */

struct tree {
    uint32_t root;
    int is_index;
    char name[DSQ_TREE_NAME_MAX];
    char table[DSQ_TREE_NAME_MAX];
};

struct trees {
    struct tree *v;
    size_t n, cap;
};

/* A text column of a record: copy up to DSQ_TREE_NAME_MAX - 1 bytes. */
static void copy_text(char *out, const uint8_t *p, uint64_t len)
{
    size_t n =
        len < DSQ_TREE_NAME_MAX - 1 ? (size_t)len : DSQ_TREE_NAME_MAX - 1;
    memcpy(out, p, n);
    out[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == '"' || out[i] == '\\')
            out[i] = '?'; /* names go into logs and JSON as they are */
}

static uint64_t serial_len(uint64_t t)
{
    static const uint8_t fixed[] = {0, 1, 2, 3, 4, 6, 8, 8, 0, 0};
    if (t < 10)
        return fixed[t];
    if (t < 12)
        return (uint64_t)-1; /* reserved */
    return (t - 12) / 2;
}

/*
 * A sqlite_schema row (type, name, tbl_name, rootpage, sql) from its local
 * payload: the first four columns are short and come first, so the local
 * part (at least M bytes, about 100) almost always holds them; a row whose
 * first columns overflow is skipped.
 */
static void schema_row(struct trees *t, const uint8_t *p, uint32_t len)
{
    const uint8_t *end = p + len, *q = p;
    uint64_t hl, types[4];
    size_t k = varint(q, end, &hl);
    if (!k || hl > len)
        return;
    const uint8_t *h = q + k, *hend = p + hl;
    for (int i = 0; i < 4; i++) {
        if (!(k = varint(h, hend, &types[i])))
            return;
        h += k;
    }
    const uint8_t *d = hend;
    const uint8_t *col[4];
    for (int i = 0; i < 4; i++) {
        uint64_t l = serial_len(types[i]);
        if (l == (uint64_t)-1 || l > (uint64_t)(end - d))
            return;
        col[i] = d;
        d += l;
    }
    /* type and name are text (odd serial types >= 13) */
    if (types[0] < 13 || !(types[0] & 1) || types[1] < 13 || !(types[1] & 1))
        return;
    uint64_t root = 0;
    if (types[3] >= 1 && types[3] <= 6) {
        uint64_t l = serial_len(types[3]);
        for (uint64_t i = 0; i < l; i++)
            root = (root << 8) | col[3][i];
    } else if (types[3] == 9) {
        root = 1;
    }
    if (root == 0 || root > UINT32_MAX)
        return; /* views and triggers have no b-tree */
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        struct tree *nv = realloc(t->v, nc * sizeof(*nv));
        if (!nv)
            return;
        t->v = nv;
        t->cap = nc;
    }
    struct tree *x = &t->v[t->n++];
    memset(x, 0, sizeof(*x));
    x->root = (uint32_t)root;
    uint64_t tl = serial_len(types[0]);
    x->is_index = tl == 5 && !memcmp(col[0], "index", 5);
    copy_text(x->name, col[1], serial_len(types[1]));
    if (types[2] >= 13 && (types[2] & 1))
        copy_text(x->table, col[2], serial_len(types[2]));
}

/* ---- walking one tree ---- */

struct stack {
    uint32_t *v;
    size_t n, cap;
};

static int push(struct stack *s, uint32_t p)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        uint32_t *nv = realloc(s->v, nc * sizeof(*nv));
        if (!nv)
            return -1;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = p;
    return 0;
}

/*
 * Walk the tree rooted at root, naming its pages (and, when schema is not
 * NULL, collecting the schema rows of its leaves).  Stops when every
 * target is named or the budget is spent.
 */
static dsq_rc walk_tree(struct walk *w, uint32_t root, const char *name,
                        const char *table, int is_index, struct trees *schema,
                        struct dsq_err *e)
{
    struct stack st = {0};
    dsq_rc rc = DSQ_OK;
    if (push(&st, root) != 0)
        return DSQ_ENOMEM;
    while (st.n && (w->left || schema)) {
        uint32_t p = st.v[--st.n];
        if (w->reads >= w->max_reads)
            break;
        if (!seen_add(w, p))
            continue;
        int g = get(w, p, &rc, e);
        if (g < 0)
            break;
        if (g == 0)
            continue;
        claim(w, p, name, table, is_index);
        uint8_t type;
        uint32_t ncells, at, right;
        if (page_header(w, p, &type, &ncells, &at, &right) != 0)
            continue; /* not a b-tree page: leave it unnamed */
        /* children and overflow chains, read after this page's cells */
        struct stack more = {0};
        for (uint32_t i = 0; i < ncells; i++) {
            uint32_t off =
                ((uint32_t)w->buf[at + 2 * i] << 8) | w->buf[at + 2 * i + 1];
            struct cell c;
            if (parse_cell(w, type, off, &c) != 0)
                continue;
            if (c.child)
                push(&more, c.child);
            if (c.overflow)
                push(&more, c.overflow | 0x80000000u);
            if (schema && type == 13)
                schema_row(schema, w->buf + c.local_off, c.local_len);
        }
        if (right)
            push(&more, right);
        for (size_t i = 0; i < more.n; i++) {
            uint32_t q = more.v[i];
            if (!(q & 0x80000000u)) {
                push(&st, q);
                continue;
            }
            /* an overflow chain: each page's first 4 bytes name the next */
            uint32_t ov = q & 0x7fffffffu;
            while (ov && w->reads < w->max_reads && seen_add(w, ov)) {
                uint32_t cur = ov;
                claim(w, cur, name, table, is_index);
                if (!w->left && !schema)
                    break;
                int gg = get(w, cur, &rc, e);
                if (gg <= 0)
                    break;
                ov = dsq_be32(w->buf);
            }
            if (rc != DSQ_OK)
                break;
        }
        free(more.v);
        if (rc != DSQ_OK)
            break;
    }
    free(st.v);
    return rc;
}

void dsq_sqlite_page_links(const uint8_t *page, uint32_t pgno,
                           uint32_t page_size, uint32_t usable, int schema,
                           uint32_t *out, size_t max, size_t *n, int *kind)
{
    *n = 0;
    *kind = 0;
    if (usable < 480 || usable > page_size)
        return;
    struct walk w = {
        .page_size = page_size, .usable = usable, .buf = (uint8_t *)page};
    uint8_t type;
    uint32_t ncells, at, right;
    if (page_header(&w, pgno, &type, &ncells, &at, &right) != 0)
        return;
    *kind = type;
    if (type == 13 && schema) {
        struct trees t = {0};
        for (uint32_t i = 0; i < ncells; i++) {
            uint32_t off =
                ((uint32_t)page[at + 2 * i] << 8) | page[at + 2 * i + 1];
            struct cell c;
            if (parse_cell(&w, type, off, &c) == 0)
                schema_row(&t, page + c.local_off, c.local_len);
        }
        for (size_t i = 0; i < t.n && *n < max; i++)
            out[(*n)++] = t.v[i].root;
        free(t.v);
        return;
    }
    if (type != 2 && type != 5)
        return;
    for (uint32_t i = 0; i < ncells && *n < max; i++) {
        uint32_t off = ((uint32_t)page[at + 2 * i] << 8) | page[at + 2 * i + 1];
        struct cell c;
        if (parse_cell(&w, type, off, &c) == 0 && c.child)
            out[(*n)++] = c.child;
    }
    if (right && *n < max)
        out[(*n)++] = right;
}

dsq_rc dsq_sqlite_page_owners(const uint8_t *page1, uint32_t page_size,
                              uint32_t page_count, dsq_page_reader read,
                              void *ctx, const uint32_t *pages, size_t n,
                              struct dsq_page_owner *out, size_t max_reads,
                              struct dsq_err *e)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].pgno = pages[i];
    }
    if (dsq_sqlite_page_size(page1, page_size) != page_size ||
        page1[20] >= page_size - 480)
        return dsq_err_set(e, DSQ_EINVAL,
                           "page 1 is not a SQLite header of page size %u",
                           page_size);
    struct walk w = {.page_size = page_size,
                     .usable = page_size - page1[20],
                     .page_count = page_count,
                     .read = read,
                     .ctx = ctx,
                     .max_reads = max_reads,
                     .pages = pages,
                     .out = out,
                     .n = n,
                     .left = n};
    w.seen_cap = 64;
    while (w.seen_cap < 2 * (max_reads + 16))
        w.seen_cap *= 2;
    w.seen = calloc(w.seen_cap, sizeof(*w.seen));
    w.buf = malloc(page_size);
    struct trees t = {0};
    dsq_rc rc = DSQ_OK;
    if (!w.seen || !w.buf) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    /* the freelist first: cheap (trunk pages only hold numbers) */
    uint32_t *fl = NULL;
    size_t nfl = 0;
    if (dsq_sqlite_freelist(page1, page_size, page_count, read, ctx, &fl, &nfl,
                            NULL) == DSQ_OK) {
        for (size_t i = 0; i < nfl; i++)
            claim(&w, fl[i], "(freelist)", "", 0);
        free(fl);
    }
    rc = walk_tree(&w, 1, "sqlite_schema", "sqlite_schema", 0, &t, e);
    for (size_t i = 0; rc == DSQ_OK && i < t.n && w.left; i++)
        rc = walk_tree(&w, t.v[i].root, t.v[i].name, t.v[i].table,
                       t.v[i].is_index, NULL, e);
out:
    free(t.v);
    free(w.seen);
    free(w.buf);
    return rc;
}
