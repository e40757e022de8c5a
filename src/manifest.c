/*
 * manifest.c - codecs for manifests (manifests/v{N:020d}.json) and the root
 * hint (root.json).
 *
 * Layer: pure codec.  Decoding parses with jansson (duplicate keys
 * rejected, nesting bounded by jansson, \u0000 refused), then converts
 * field by field with type and range checks and caps on every array before
 * allocating, then runs manifest_check(): the one list of validity rules,
 * shared with the encoder so it never writes what the decoder would refuse.
 * Encoding writes the compact JSON text directly (no jansson tree: an
 * overlay of millions of pages would cost gigabytes as json_t values); the
 * bytes are exactly what jansson's json_dumpb(JSON_COMPACT |
 * JSON_PRESERVE_ORDER) writes for the same document, which the unit tests
 * check.
 *
 * Invariants: docs/format.md, "Manifest" and "root.json".  Out-parameters
 * are written only on success.  Thread-safety: no shared state.
 */
#include "manifest.h"
#include "env.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBJ_NAME(key) ((key) ? (key) : "(unnamed)")
/* 9999-12-31T23:59:59.999Z: the last time the 24-character form holds */
#define TIME_MS_MAX 253402300799999ull
#define ROOT_FORMAT 1 /* format_version of root.json */

static const char *const page1_names[] = {"none", "counters", "changed"};

/* ------------------------------------------------------------------ */
/* validation shared by encoder and decoder                             */

static int is_hex(const char *s, size_t len, size_t want)
{
    if (len != want)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int id_valid(const char id[33])
{
    return memchr(id, 0, 33) != NULL && is_hex(id, strlen(id), 32);
}

static int time_valid(uint64_t ms)
{
    char buf[32];
    uint64_t back;
    if (ms > TIME_MS_MAX)
        return 0;
    dsq_format_time_ms(ms, buf);
    return dsq_parse_time_ms(buf, &back) == 0 && back == ms;
}

static int chunk_pages_valid(uint64_t p)
{
    return p >= DSQ_CHUNK_PAGES_MIN && p <= DSQ_CHUNK_PAGES_MAX &&
           (p & (p - 1)) == 0;
}

static int stored_len_valid(uint8_t codec, uint32_t length, uint32_t page_size)
{
    if (codec == DSQ_CODEC_RAW)
        return length == page_size;
    if (codec == DSQ_CODEC_ZSTD)
        return length >= 1 && length <= DSQ_STORED_PAGE_MAX;
    return 0;
}

/* created keys may name segments or chunks */
static int created_key_valid(const char *k)
{
    size_t n = strlen(k);
    return dsq_object_key_valid(k, n, "segments/") ||
           dsq_object_key_valid(k, n, "pagetables/");
}

static const char *ranges_check(const struct dsq_range *r, size_t n,
                                const char *name, char *why, size_t wn)
{
    if (n > DSQ_MANIFEST_MAX_RANGES) {
        snprintf(why, wn, "\"%s\" has too many ranges", name);
        return why;
    }
    uint64_t prev_end = 0; /* one past the previous range */
    for (size_t i = 0; i < n; i++) {
        uint64_t end = (uint64_t)r[i].start + r[i].count;
        const char *w = NULL;
        if (r[i].start < 1 || r[i].count < 1)
            w = "empty range or page 0";
        else if (end - 1 > UINT32_MAX)
            w = "range goes past page 2^32-1";
        else if (i > 0 && r[i].start <= prev_end)
            w = "ranges not sorted, disjoint and non-adjacent";
        if (w) {
            snprintf(why, wn, "\"%s\" range #%zu [%u,%u]: %s", name, i,
                     r[i].start, r[i].count, w);
            return why;
        }
        prev_end = end;
    }
    return NULL;
}

/*
 * Format 2: the overlay entries stored in this very manifest (segment key
 * == its own key) tile the inline text in page-number order, each the
 * canonical base64 of its stored bytes; no other text is there.
 */
static const char *inline_check(const struct dsq_manifest *m, char *why,
                                size_t wn)
{
    char own[64];
    dsq_manifest_key(m->version, own);
    if (m->inline_len > dsq_b64_len(DSQ_MANIFEST_INLINE_MAX))
        return "\"inline\" is longer than the cap";
    if ((m->inline_len > 0) != (m->inline_text != NULL) ||
        (m->inline_text && strlen(m->inline_text) != m->inline_len))
        return "\"inline\" text and length disagree";
    uint8_t *self = NULL;
    uint8_t scratch[DSQ_STORED_PAGE_MAX];
    uint64_t pos = DSQ_MANIFEST_INLINE_OFFSET;
    const char *w = NULL;
    if (m->n_segments) {
        self = calloc(m->n_segments, 1);
        if (!self)
            return "out of memory";
        for (size_t i = 0; i < m->n_segments; i++)
            self[i] = strcmp(m->segments[i], own) == 0;
    }
    for (size_t i = 0; i < m->n_overlay && !w; i++) {
        const struct dsq_page_loc *p = &m->overlay[i];
        if (!self[p->seg])
            continue;
        size_t tl = dsq_b64_len(p->length);
        if (p->offset != pos ||
            pos + tl > DSQ_MANIFEST_INLINE_OFFSET + m->inline_len) {
            snprintf(why, wn,
                     "overlay page #%zu (page %u) is not where the inline "
                     "text puts the next page",
                     i, p->pgno);
            w = why;
        } else if (dsq_b64_decode(m->inline_text +
                                      (pos - DSQ_MANIFEST_INLINE_OFFSET),
                                  tl, scratch, p->length) != 0) {
            snprintf(why, wn,
                     "overlay page #%zu (page %u): inline text is not the "
                     "canonical base64 of %u bytes",
                     i, p->pgno, p->length);
            w = why;
        }
        pos += tl;
    }
    free(self);
    if (!w && pos != DSQ_MANIFEST_INLINE_OFFSET + m->inline_len)
        w = "\"inline\" holds text no overlay page names";
    return w;
}

/* NULL if m satisfies every rule of docs/format.md, else why not. */
static const char *manifest_check(const struct dsq_manifest *m, int encoding,
                                  char *why, size_t wn)
{
    const char *w;
    unsigned fv = m->format_version ? m->format_version : 1;
    if (fv < DSQ_MANIFEST_FORMAT_MIN || fv > DSQ_MANIFEST_FORMAT_MAX)
        return "unknown \"format_version\"";
    /* format 3 is format 2 whose keys may name another database's objects;
       the encoder picks it by itself (manifest_fv) */
    int foreign_ok = fv >= 3 || (encoding && fv == 2);
    if (fv == 1 && (m->incarnation[0] || m->inline_text || m->inline_len))
        return "format_version 1 has no incarnation and no inline pages";
    if (fv >= 2 && !id_valid(m->incarnation))
        return "\"incarnation\" is not 32 lowercase hex digits";
    /* format 4 is format 3 with a permission mode; the encoder picks it
       for a format-2 manifest that has one */
    if (!encoding && (fv == 4) != (m->has_mode != 0))
        return fv == 4 ? "format_version 4 has no \"mode\""
                       : "a permission mode needs format_version 4";
    if (encoding && m->has_mode && fv != 2 && fv != 4)
        return "a permission mode needs format_version 4";
    if (m->mode > DSQ_MANIFEST_MODE_MAX)
        return "\"mode\" is above 07777";
    if (m->version < 1 || m->version > DSQ_JSON_INT_MAX)
        return "\"version\" out of range";
    if (m->parent != m->version - 1)
        return "\"parent\" is not version - 1";
    if (!dsq_page_size_valid(m->page_size))
        return "bad \"page_size\"";
    if (m->page_count > DSQ_PAGE_COUNT_MAX)
        return "\"page_count\" out of range";
    if (!id_valid(m->writer_id))
        return "\"writer_id\" is not 32 lowercase hex digits";
    if (!id_valid(m->txn_id))
        return "\"txn_id\" is not 32 lowercase hex digits";
    if (!time_valid(m->time_ms))
        return "\"time\" out of range";
    if ((w = ranges_check(m->write_set, m->n_write, "write_set", why, wn)))
        return w;
    if ((w = ranges_check(m->freed_set, m->n_freed, "freed_set", why, wn)))
        return w;
    if ((unsigned)m->page1 > DSQ_PAGE1_CHANGED)
        return "bad \"page1\"";
    if (m->n_created > DSQ_MANIFEST_MAX_KEYS)
        return "too many \"created\" keys";
    for (size_t i = 0; i < m->n_created; i++)
        if (!m->created[i] || !created_key_valid(m->created[i])) {
            snprintf(why, wn, "\"created\" key #%zu is not valid", i);
            return why;
        }

    /* checkpoint */
    if (m->ckpt_version > m->version)
        return "checkpoint \"version\" is after the manifest's version";
    if (!chunk_pages_valid(m->chunk_pages))
        return "bad checkpoint \"chunk_pages\"";
    if (m->ckpt_page_limit > m->page_count)
        return "checkpoint \"page_limit\" is above \"page_count\"";
    if (m->ckpt_version == 0 && (m->n_chunks || m->ckpt_page_limit))
        return "no checkpoint (version 0) but chunks or a page limit";
    if (m->n_chunks > DSQ_MANIFEST_MAX_CHUNKS)
        return "too many checkpoint chunks";
    uint64_t max_index = (1ull << 32) / m->chunk_pages;
    for (size_t i = 0; i < m->n_chunks; i++) {
        const struct dsq_chunk_ref *c = &m->chunks[i];
        w = NULL;
        if (c->index >= max_index)
            w = "index out of range";
        else if (i > 0 && c->index <= m->chunks[i - 1].index)
            w = "indexes not sorted and unique";
        else if (!c->key ||
                 !(dsq_object_key_valid(c->key, strlen(c->key),
                                        "pagetables/") ||
                   (foreign_ok && dsq_foreign_key_valid(c->key, strlen(c->key),
                                                        "pagetables/"))))
            w = "bad key";
        else if (c->size < 1 || c->size > DSQ_JSON_INT_MAX)
            w = "size out of range";
        if (w) {
            snprintf(why, wn, "checkpoint chunk #%zu: %s", i, w);
            return why;
        }
    }

    /* overlay */
    if (m->n_segments > DSQ_MANIFEST_MAX_KEYS)
        return "too many overlay segments";
    for (size_t i = 0; i < m->n_segments; i++) {
        uint64_t mv = 0;
        if (m->segments[i] && fv >= 2 &&
            dsq_key_is_manifest(m->segments[i], &mv)) {
            if (mv <= m->ckpt_version || mv > m->version) {
                snprintf(why, wn,
                         "overlay segment key #%zu names a version outside "
                         "(checkpoint, version]",
                         i);
                return why;
            }
            continue;
        }
        if (!m->segments[i] ||
            !(dsq_object_key_valid(m->segments[i], strlen(m->segments[i]),
                                   "segments/") ||
              (foreign_ok &&
               dsq_foreign_key_valid(m->segments[i], strlen(m->segments[i]),
                                     "segments/")))) {
            snprintf(why, wn, "overlay segment key #%zu is not valid", i);
            return why;
        }
    }
    if (m->n_overlay > DSQ_MANIFEST_MAX_OVERLAY)
        return "too many overlay pages";
    for (size_t i = 0; i < m->n_overlay; i++) {
        const struct dsq_page_loc *p = &m->overlay[i];
        w = NULL;
        if (p->pgno < 1 || p->pgno > m->page_count)
            w = "page number outside 1..page_count";
        else if (i > 0 && p->pgno <= m->overlay[i - 1].pgno)
            w = "page numbers not sorted and unique";
        else if (p->seg >= m->n_segments)
            w = "segment index out of range";
        else if (!stored_len_valid(p->codec, p->length, m->page_size))
            w = "bad codec or stored length";
        else if (p->offset > DSQ_JSON_INT_MAX - p->length)
            w = "offset out of range";
        if (w) {
            snprintf(why, wn, "overlay page #%zu (page %u): %s", i, p->pgno, w);
            return why;
        }
    }
    if (fv >= 2)
        return inline_check(m, why, wn);
    return NULL;
}

/* The format_version written for m: for a format-2 manifest, 4 when it
   has a mode, 3 when it names another database's object; else m's own. */
static unsigned manifest_fv(const struct dsq_manifest *m)
{
    if (m->format_version != 2)
        return m->format_version;
    if (m->has_mode)
        return DSQ_MANIFEST_FORMAT_MODE;
    for (size_t i = 0; i < m->n_chunks; i++)
        if (dsq_key_is_foreign(m->chunks[i].key))
            return DSQ_MANIFEST_FORMAT_FOREIGN;
    for (size_t i = 0; i < m->n_segments; i++)
        if (dsq_key_is_foreign(m->segments[i]))
            return DSQ_MANIFEST_FORMAT_FOREIGN;
    return 2;
}

/* ------------------------------------------------------------------ */
/* JSON writing                                                         */

struct jw {
    struct dsq_buf *b;
    dsq_rc rc;
};

static void jw_raw(struct jw *w, const char *s, size_t n)
{
    if (w->rc == DSQ_OK)
        w->rc = dsq_buf_append(w->b, s, n);
}

static void jw_lit(struct jw *w, const char *s)
{
    jw_raw(w, s, strlen(s));
}

static void jw_u64(struct jw *w, uint64_t v)
{
    char buf[24];
    size_t i = sizeof(buf);
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jw_raw(w, buf + i, sizeof(buf) - i);
}

static void jw_hex16(struct jw *w, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    char buf[18];
    buf[0] = buf[17] = '"';
    for (int i = 16; i >= 1; i--, v >>= 4)
        buf[i] = hex[v & 15];
    jw_raw(w, buf, sizeof(buf));
}

/* A JSON string, escaped as jansson does (UTF-8 passes through). */
static void jw_str(struct jw *w, const char *s)
{
    jw_raw(w, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jw_raw(w, run, (size_t)(s - run));
        char esc[8];
        switch (c) {
        case '"':
            jw_lit(w, "\\\"");
            break;
        case '\\':
            jw_lit(w, "\\\\");
            break;
        case '\b':
            jw_lit(w, "\\b");
            break;
        case '\f':
            jw_lit(w, "\\f");
            break;
        case '\n':
            jw_lit(w, "\\n");
            break;
        case '\r':
            jw_lit(w, "\\r");
            break;
        case '\t':
            jw_lit(w, "\\t");
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04X", c);
            jw_lit(w, esc);
        }
        run = s + 1;
    }
    jw_raw(w, run, (size_t)(s - run));
    jw_raw(w, "\"", 1);
}

/* "name": (with the comma before it unless first) */
static void jw_key(struct jw *w, const char *name, int first)
{
    if (!first)
        jw_raw(w, ",", 1);
    jw_str(w, name);
    jw_raw(w, ":", 1);
}

static void jw_time(struct jw *w, uint64_t ms)
{
    char buf[32];
    dsq_format_time_ms(ms, buf);
    jw_str(w, buf);
}

static void jw_ranges(struct jw *w, const struct dsq_range *r, size_t n)
{
    jw_raw(w, "[", 1);
    for (size_t i = 0; i < n; i++) {
        jw_raw(w, i ? ",[" : "[", i ? 2 : 1);
        jw_u64(w, r[i].start);
        jw_raw(w, ",", 1);
        jw_u64(w, r[i].count);
        jw_raw(w, "]", 1);
    }
    jw_raw(w, "]", 1);
}

static void jw_keys(struct jw *w, char *const *k, size_t n)
{
    jw_raw(w, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            jw_raw(w, ",", 1);
        jw_str(w, k[i]);
    }
    jw_raw(w, "]", 1);
}

dsq_rc dsq_manifest_encode(const struct dsq_manifest *m, struct dsq_buf *out,
                           struct dsq_err *e)
{
    char whybuf[160];
    const char *why = manifest_check(m, 1, whybuf, sizeof(whybuf));
    if (why)
        return dsq_err_set(e, DSQ_EINVAL, "manifest v%llu: %s",
                           (unsigned long long)m->version, why);
    size_t base = out->len;
    struct jw w = {out, DSQ_OK};
    unsigned fv = manifest_fv(m);
    if (fv >= 2) {
        /* the inline text at a fixed offset: its pages' offsets are
           known before the rest is written */
        jw_lit(&w, fv == 4   ? DSQ_MANIFEST_PREFIX4
                   : fv == 3 ? DSQ_MANIFEST_PREFIX3
                             : DSQ_MANIFEST_PREFIX2);
        if (m->inline_len)
            jw_raw(&w, m->inline_text, m->inline_len);
        jw_raw(&w, "\"", 1);
    } else {
        jw_raw(&w, "{", 1);
        jw_key(&w, "format", 1);
        jw_str(&w, "dsqlfs-manifest");
        jw_key(&w, "format_version", 0);
        jw_u64(&w, 1);
    }
    jw_key(&w, "version", 0);
    jw_u64(&w, m->version);
    jw_key(&w, "parent", 0);
    jw_u64(&w, m->parent);
    if (fv >= 2) {
        jw_key(&w, "incarnation", 0);
        jw_str(&w, m->incarnation);
    }
    if (fv == 4) {
        jw_key(&w, "mode", 0);
        jw_u64(&w, m->mode);
    }
    jw_key(&w, "page_size", 0);
    jw_u64(&w, m->page_size);
    jw_key(&w, "page_count", 0);
    jw_u64(&w, m->page_count);
    jw_key(&w, "writer_id", 0);
    jw_str(&w, m->writer_id);
    jw_key(&w, "txn_id", 0);
    jw_str(&w, m->txn_id);
    jw_key(&w, "time", 0);
    jw_time(&w, m->time_ms);
    jw_key(&w, "write_set", 0);
    jw_ranges(&w, m->write_set, m->n_write);
    jw_key(&w, "freed_set", 0);
    jw_ranges(&w, m->freed_set, m->n_freed);
    jw_key(&w, "page1", 0);
    jw_str(&w, page1_names[m->page1]);
    jw_key(&w, "created", 0);
    jw_keys(&w, m->created, m->n_created);

    jw_key(&w, "checkpoint", 0);
    jw_raw(&w, "{", 1);
    jw_key(&w, "version", 1);
    jw_u64(&w, m->ckpt_version);
    jw_key(&w, "page_limit", 0);
    jw_u64(&w, m->ckpt_page_limit);
    jw_key(&w, "chunk_pages", 0);
    jw_u64(&w, m->chunk_pages);
    jw_key(&w, "chunks", 0);
    jw_raw(&w, "[", 1);
    for (size_t i = 0; i < m->n_chunks; i++) {
        const struct dsq_chunk_ref *c = &m->chunks[i];
        jw_raw(&w, i ? ",[" : "[", i ? 2 : 1);
        jw_u64(&w, c->index);
        jw_raw(&w, ",", 1);
        jw_str(&w, c->key);
        jw_raw(&w, ",", 1);
        jw_u64(&w, c->size);
        jw_raw(&w, ",", 1);
        jw_hex16(&w, c->checksum);
        jw_raw(&w, "]", 1);
    }
    jw_raw(&w, "]}", 2);

    jw_key(&w, "overlay", 0);
    jw_raw(&w, "{", 1);
    jw_key(&w, "segments", 1);
    jw_keys(&w, m->segments, m->n_segments);
    jw_key(&w, "pages", 0);
    jw_raw(&w, "[", 1);
    for (size_t i = 0; i < m->n_overlay; i++) {
        const struct dsq_page_loc *p = &m->overlay[i];
        jw_raw(&w, i ? ",[" : "[", i ? 2 : 1);
        jw_u64(&w, p->pgno);
        jw_raw(&w, ",", 1);
        jw_u64(&w, p->seg);
        jw_raw(&w, ",", 1);
        jw_u64(&w, p->offset);
        jw_raw(&w, ",", 1);
        jw_u64(&w, p->length);
        jw_raw(&w, ",", 1);
        jw_u64(&w, p->codec);
        jw_raw(&w, ",", 1);
        jw_hex16(&w, p->checksum);
        jw_raw(&w, "]", 1);
    }
    jw_raw(&w, "]}}", 3);

    if (w.rc == DSQ_OK && out->len - base > DSQ_MANIFEST_MAX_BYTES)
        w.rc = DSQ_ERANGE;
    if (w.rc != DSQ_OK) {
        out->len = base;
        return dsq_err_set(e, w.rc, "manifest v%llu: encoding: %s",
                           (unsigned long long)m->version, dsq_strerror(w.rc));
    }
    return DSQ_OK;
}

/* ------------------------------------------------------------------ */
/* JSON reading                                                         */

struct jr {
    char why[200];
    int oom; /* the failure was an allocation */
};

static int jr_fail(struct jr *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int jr_oom(struct jr *r)
{
    r->oom = 1;
    snprintf(r->why, sizeof(r->why), "out of memory");
    return -1;
}

static int jr_fail(struct jr *r, const char *fmt, ...)
{
    char buf[sizeof(r->why)]; /* the arguments may point into r->why */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    memcpy(r->why, buf, sizeof(buf));
    return -1;
}

/* A non-negative JSON integer <= max. */
static int ju(const json_t *v, uint64_t max, uint64_t *out)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x > max)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

static int jfield_u(struct jr *r, const json_t *obj, const char *name,
                    uint64_t max, uint64_t *out)
{
    if (ju(json_object_get(obj, name), max, out) < 0)
        return jr_fail(r, "\"%s\" is missing, not an integer or out of range",
                       name);
    return 0;
}

static int jfield_u32(struct jr *r, const json_t *obj, const char *name,
                      uint32_t *out)
{
    uint64_t v = 0;
    if (jfield_u(r, obj, name, UINT32_MAX, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static const char *jfield_str(struct jr *r, const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_string(v)) {
        jr_fail(r, "\"%s\" is missing or not a string", name);
        return NULL;
    }
    return json_string_value(v);
}

static const json_t *jfield_array(struct jr *r, const json_t *obj,
                                  const char *name, size_t cap)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_array(v)) {
        jr_fail(r, "\"%s\" is missing or not an array", name);
        return NULL;
    }
    if (json_array_size(v) > cap) {
        jr_fail(r, "\"%s\" has more than %zu elements", name, cap);
        return NULL;
    }
    return v;
}

static int jhex16(const json_t *v, uint64_t *out)
{
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    if (!is_hex(s, json_string_length(v), 16))
        return -1;
    *out = strtoull(s, NULL, 16);
    return 0;
}

/* The canonical time string (what dsq_format_time_ms writes). */
static int jtime(const char *s, uint64_t *ms)
{
    char back[32];
    uint64_t v;
    if (dsq_parse_time_ms(s, &v) != 0 || !time_valid(v))
        return -1;
    dsq_format_time_ms(v, back);
    if (strcmp(back, s) != 0)
        return -1;
    *ms = v;
    return 0;
}

static int jid(struct jr *r, const json_t *obj, const char *name, char out[33])
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_string(v) ||
        !is_hex(json_string_value(v), json_string_length(v), 32))
        return jr_fail(r, "\"%s\" is not 32 lowercase hex digits", name);
    memcpy(out, json_string_value(v), 33);
    return 0;
}

static int jranges(struct jr *r, const json_t *obj, const char *name,
                   struct dsq_range **out, size_t *n_out)
{
    const json_t *a = jfield_array(r, obj, name, DSQ_MANIFEST_MAX_RANGES);
    if (!a)
        return -1;
    size_t n = json_array_size(a);
    if (n == 0)
        return 0;
    struct dsq_range *rs = calloc(n, sizeof(*rs));
    if (!rs)
        return jr_oom(r);
    *out = rs; /* owned by the manifest from here on */
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        const json_t *el = json_array_get(a, i);
        uint64_t s, c;
        if (!json_is_array(el) || json_array_size(el) != 2 ||
            ju(json_array_get(el, 0), UINT32_MAX, &s) < 0 ||
            ju(json_array_get(el, 1), UINT32_MAX, &c) < 0)
            return jr_fail(r, "\"%s\"[%zu] is not [start,count]", name, i);
        rs[i].start = (uint32_t)s;
        rs[i].count = (uint32_t)c;
    }
    return 0;
}

/* An array of key strings (validity is manifest_check's job). */
static int jkeys(struct jr *r, const json_t *obj, const char *name, char ***out,
                 size_t *n_out)
{
    const json_t *a = jfield_array(r, obj, name, DSQ_MANIFEST_MAX_KEYS);
    if (!a)
        return -1;
    size_t n = json_array_size(a);
    if (n == 0)
        return 0;
    char **ks = calloc(n, sizeof(*ks));
    if (!ks)
        return jr_oom(r);
    *out = ks;
    for (size_t i = 0; i < n; i++) {
        const json_t *el = json_array_get(a, i);
        if (!json_is_string(el))
            return jr_fail(r, "\"%s\"[%zu] is not a string", name, i);
        ks[i] = strdup(json_string_value(el));
        if (!ks[i])
            return jr_oom(r);
        *n_out = i + 1;
    }
    return 0;
}

static int jcheckpoint(struct jr *r, const json_t *root, struct dsq_manifest *m)
{
    const json_t *ck = json_object_get(root, "checkpoint");
    uint64_t v;
    if (!json_is_object(ck))
        return jr_fail(r, "\"checkpoint\" is missing or not an object");
    if (jfield_u(r, ck, "version", DSQ_JSON_INT_MAX, &m->ckpt_version) < 0 ||
        jfield_u32(r, ck, "page_limit", &m->ckpt_page_limit) < 0 ||
        jfield_u32(r, ck, "chunk_pages", &m->chunk_pages) < 0)
        return jr_fail(r, "checkpoint: %s", r->why);
    const json_t *a = jfield_array(r, ck, "chunks", DSQ_MANIFEST_MAX_CHUNKS);
    if (!a)
        return jr_fail(r, "checkpoint: %s", r->why);
    size_t n = json_array_size(a);
    if (n == 0)
        return 0;
    m->chunks = calloc(n, sizeof(*m->chunks));
    if (!m->chunks)
        return jr_oom(r);
    for (size_t i = 0; i < n; i++) {
        const json_t *el = json_array_get(a, i);
        struct dsq_chunk_ref *c = &m->chunks[i];
        const json_t *k = json_array_get(el, 1);
        if (!json_is_array(el) || json_array_size(el) != 4 ||
            ju(json_array_get(el, 0), UINT32_MAX, &v) < 0 ||
            !json_is_string(k) ||
            ju(json_array_get(el, 2), DSQ_JSON_INT_MAX, &c->size) < 0 ||
            jhex16(json_array_get(el, 3), &c->checksum) < 0)
            return jr_fail(r,
                           "checkpoint \"chunks\"[%zu] is not "
                           "[index,key,size,checksum]",
                           i);
        c->index = (uint32_t)v;
        c->key = strdup(json_string_value(k));
        if (!c->key)
            return jr_oom(r);
        m->n_chunks = i + 1;
    }
    return 0;
}

static int joverlay(struct jr *r, const json_t *root, struct dsq_manifest *m)
{
    const json_t *ov = json_object_get(root, "overlay");
    if (!json_is_object(ov))
        return jr_fail(r, "\"overlay\" is missing or not an object");
    if (jkeys(r, ov, "segments", &m->segments, &m->n_segments) < 0)
        return jr_fail(r, "overlay: %s", r->why);
    const json_t *a = jfield_array(r, ov, "pages", DSQ_MANIFEST_MAX_OVERLAY);
    if (!a)
        return jr_fail(r, "overlay: %s", r->why);
    size_t n = json_array_size(a);
    if (n == 0)
        return 0;
    m->overlay = calloc(n, sizeof(*m->overlay));
    if (!m->overlay)
        return jr_oom(r);
    m->n_overlay = n;
    for (size_t i = 0; i < n; i++) {
        const json_t *el = json_array_get(a, i);
        struct dsq_page_loc *p = &m->overlay[i];
        uint64_t pgno, seg, len, codec;
        if (!json_is_array(el) || json_array_size(el) != 6 ||
            ju(json_array_get(el, 0), UINT32_MAX, &pgno) < 0 ||
            ju(json_array_get(el, 1), UINT32_MAX, &seg) < 0 ||
            ju(json_array_get(el, 2), DSQ_JSON_INT_MAX, &p->offset) < 0 ||
            ju(json_array_get(el, 3), UINT32_MAX, &len) < 0 ||
            ju(json_array_get(el, 4), 255, &codec) < 0 ||
            jhex16(json_array_get(el, 5), &p->checksum) < 0)
            return jr_fail(r,
                           "overlay \"pages\"[%zu] is not "
                           "[pgno,seg,offset,length,codec,checksum]",
                           i);
        p->pgno = (uint32_t)pgno;
        p->seg = (uint32_t)seg;
        p->length = (uint32_t)len;
        p->codec = (uint8_t)codec;
    }
    return 0;
}

/*
 * Format 2: the object starts with DSQ_MANIFEST_PREFIX2 and the "inline"
 * string stands there verbatim (no escapes), so the offsets the overlay
 * records point at its bytes; then "incarnation".
 */
static int jinline(struct jr *r, const uint8_t *data, size_t len,
                   const json_t *root, struct dsq_manifest *m)
{
    const size_t off = DSQ_MANIFEST_INLINE_OFFSET;
    const char *pre = m->format_version == 4   ? DSQ_MANIFEST_PREFIX4
                      : m->format_version == 3 ? DSQ_MANIFEST_PREFIX3
                                               : DSQ_MANIFEST_PREFIX2;
    if (len < off || memcmp(data, pre, off) != 0)
        return jr_fail(r,
                       "a format_version %u manifest must start with "
                       "{\"format\":\"dsqlfs-manifest\",\"format_version\":"
                       "%u,\"inline\":\"",
                       m->format_version, m->format_version);
    const json_t *v = json_object_get(root, "inline");
    if (!json_is_string(v))
        return jr_fail(r, "\"inline\" is missing or not a string");
    size_t n = json_string_length(v);
    if (n > dsq_b64_len(DSQ_MANIFEST_INLINE_MAX))
        return jr_fail(r, "\"inline\" is longer than the cap");
    if (len - off < n + 1 || memcmp(data + off, json_string_value(v), n) != 0 ||
        data[off + n] != '"')
        return jr_fail(r, "\"inline\" is not written verbatim at byte %zu",
                       off);
    if (n) {
        m->inline_text = malloc(n + 1);
        if (!m->inline_text)
            return jr_oom(r);
        memcpy(m->inline_text, json_string_value(v), n + 1);
        m->inline_len = n;
    }
    const json_t *inc = json_object_get(root, "incarnation");
    if (!json_is_string(inc) ||
        !is_hex(json_string_value(inc), json_string_length(inc), 32))
        return jr_fail(r, "\"incarnation\" is not 32 lowercase hex digits");
    memcpy(m->incarnation, json_string_value(inc), 33);
    return 0;
}

/*
 * Parse data as a JSON object whose "format" is fmt and whose
 * "format_version" is in oldest..ours.  DSQ_OK with *root, or the error.
 */
static dsq_rc jopen(const uint8_t *data, size_t len, size_t max,
                    const char *what, const char *fmt, int oldest, int ours,
                    const char *key, json_t **root, struct dsq_err *e)
{
    json_error_t jerr;
    if (len > max)
        return DSQ_CORRUPT(e, "%s %s: %zu bytes, more than the cap %zu", what,
                           OBJ_NAME(key), len, max);
    json_t *j =
        json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j && json_error_code(&jerr) == json_error_out_of_memory)
        return dsq_err_set(e, DSQ_ENOMEM, "%s %s: out of memory", what,
                           OBJ_NAME(key));
    if (!j)
        return DSQ_CORRUPT(e, "%s %s: bad JSON at line %d column %d: %s", what,
                           OBJ_NAME(key), jerr.line, jerr.column, jerr.text);
    const json_t *f = json_object_get(j, "format");
    if (!json_is_object(j) || !json_is_string(f) ||
        strcmp(json_string_value(f), fmt) != 0) {
        json_decref(j);
        return DSQ_CORRUPT(e, "%s %s: not a %s (\"format\" is not \"%s\")",
                           what, OBJ_NAME(key), what, fmt);
    }
    const json_t *fv = json_object_get(j, "format_version");
    if (!json_is_integer(fv) || json_integer_value(fv) < 0) {
        json_decref(j);
        return DSQ_CORRUPT(e, "%s %s: bad \"format_version\"", what,
                           OBJ_NAME(key));
    }
    if (json_integer_value(fv) < oldest || json_integer_value(fv) > ours) {
        long long v = (long long)json_integer_value(fv);
        json_decref(j);
        if (oldest == ours)
            return dsq_err_set(e, DSQ_EUNSUPPORTED,
                               "%s %s: format_version %lld is not supported "
                               "(this build reads format_version %d)",
                               what, OBJ_NAME(key), v, ours);
        return dsq_err_set(e, DSQ_EUNSUPPORTED,
                           "%s %s: format_version %lld is not supported "
                           "(this build reads format_version %d to %d)",
                           what, OBJ_NAME(key), v, oldest, ours);
    }
    *root = j;
    return DSQ_OK;
}

dsq_rc dsq_manifest_decode(const uint8_t *data, size_t len, const char *key,
                           struct dsq_manifest **out, struct dsq_err *e)
{
    json_t *root = NULL;
    struct dsq_manifest *m = NULL;
    struct jr r = {"", 0};
    char whybuf[160];
    const char *s;
    dsq_rc rc =
        jopen(data, len, DSQ_MANIFEST_MAX_BYTES, "manifest", "dsqlfs-manifest",
              DSQ_MANIFEST_FORMAT_MIN, DSQ_MANIFEST_FORMAT_MAX, key, &root, e);
    if (rc != DSQ_OK)
        return rc;
    m = calloc(1, sizeof(*m));
    if (!m) {
        rc = dsq_err_set(e, DSQ_ENOMEM, "manifest %s: out of memory",
                         OBJ_NAME(key));
        goto out;
    }
    m->format_version =
        (unsigned)json_integer_value(json_object_get(root, "format_version"));
    if (m->format_version >= 2 && jinline(&r, data, len, root, m) < 0)
        goto bad;
    if (m->format_version == 4) {
        if (jfield_u32(&r, root, "mode", &m->mode) < 0)
            goto bad;
        m->has_mode = 1;
    }
    if (jfield_u(&r, root, "version", DSQ_JSON_INT_MAX, &m->version) < 0 ||
        jfield_u(&r, root, "parent", DSQ_JSON_INT_MAX, &m->parent) < 0 ||
        jfield_u32(&r, root, "page_size", &m->page_size) < 0 ||
        jfield_u32(&r, root, "page_count", &m->page_count) < 0 ||
        jid(&r, root, "writer_id", m->writer_id) < 0 ||
        jid(&r, root, "txn_id", m->txn_id) < 0)
        goto bad;
    if (!(s = jfield_str(&r, root, "time")))
        goto bad;
    if (jtime(s, &m->time_ms) < 0) {
        jr_fail(&r, "\"time\" is not a valid YYYY-MM-DDTHH:MM:SS.mmmZ");
        goto bad;
    }
    if (jranges(&r, root, "write_set", &m->write_set, &m->n_write) < 0 ||
        jranges(&r, root, "freed_set", &m->freed_set, &m->n_freed) < 0)
        goto bad;
    if (!(s = jfield_str(&r, root, "page1")))
        goto bad;
    size_t i;
    for (i = 0; i < 3 && strcmp(s, page1_names[i]) != 0; i++)
        ;
    if (i == 3) {
        jr_fail(&r, "\"page1\" is not none, counters or changed");
        goto bad;
    }
    m->page1 = (enum dsq_page1_change)i;
    if (jkeys(&r, root, "created", &m->created, &m->n_created) < 0 ||
        jcheckpoint(&r, root, m) < 0 || joverlay(&r, root, m) < 0)
        goto bad;
    const char *why = manifest_check(m, 0, whybuf, sizeof(whybuf));
    if (why) {
        snprintf(r.why, sizeof(r.why), "%s", why);
        goto bad;
    }
    *out = m;
    m = NULL;
    goto out;
bad:
    if (r.oom)
        rc = dsq_err_set(e, DSQ_ENOMEM, "manifest %s: out of memory",
                         OBJ_NAME(key));
    else
        rc = DSQ_CORRUPT(e, "manifest %s: %s", OBJ_NAME(key), r.why);
out:
    dsq_manifest_free(m);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* clone, free, ranges                                                  */

static int dup_keys(char *const *src, size_t n, char ***dst)
{
    *dst = NULL;
    if (n == 0)
        return 0;
    char **k = calloc(n, sizeof(*k));
    if (!k)
        return -1;
    *dst = k;
    for (size_t i = 0; i < n; i++)
        if (!(k[i] = strdup(src[i])))
            return -1;
    return 0;
}

static void *dup_mem(const void *src, size_t n, size_t size, int *fail)
{
    if (n == 0)
        return NULL;
    void *p = malloc(n * size);
    if (!p) {
        *fail = 1;
        return NULL;
    }
    memcpy(p, src, n * size);
    return p;
}

dsq_rc dsq_manifest_clone(const struct dsq_manifest *m,
                          struct dsq_manifest **out)
{
    struct dsq_manifest *c = malloc(sizeof(*c));
    int fail = 0;
    if (!c)
        return DSQ_ENOMEM;
    *c = *m;
    /* counts stay; pointers are replaced (NULL first so free is safe) */
    c->write_set = c->freed_set = NULL;
    c->created = c->segments = NULL;
    c->chunks = NULL;
    c->overlay = NULL;
    c->inline_text = NULL;
    if (m->inline_text) {
        c->inline_text = malloc(m->inline_len + 1);
        if (c->inline_text)
            memcpy(c->inline_text, m->inline_text, m->inline_len + 1);
        else
            fail = 1;
    }
    size_t n_created = c->n_created, n_segments = c->n_segments;
    size_t n_chunks = c->n_chunks;
    c->n_created = c->n_segments = c->n_chunks = 0;

    c->write_set =
        dup_mem(m->write_set, m->n_write, sizeof(*m->write_set), &fail);
    c->freed_set =
        dup_mem(m->freed_set, m->n_freed, sizeof(*m->freed_set), &fail);
    c->overlay = dup_mem(m->overlay, m->n_overlay, sizeof(*m->overlay), &fail);
    if (dup_keys(m->created, n_created, &c->created) < 0)
        fail = 1;
    c->n_created = c->created ? n_created : 0;
    if (dup_keys(m->segments, n_segments, &c->segments) < 0)
        fail = 1;
    c->n_segments = c->segments ? n_segments : 0;
    if (n_chunks && !fail) {
        c->chunks = calloc(n_chunks, sizeof(*c->chunks));
        if (!c->chunks) {
            fail = 1;
        } else {
            c->n_chunks = n_chunks;
            for (size_t i = 0; i < n_chunks && !fail; i++) {
                c->chunks[i] = m->chunks[i];
                if (!(c->chunks[i].key = strdup(m->chunks[i].key)))
                    fail = 1;
            }
        }
    }
    if (fail) {
        dsq_manifest_free(c);
        return DSQ_ENOMEM;
    }
    *out = c;
    return DSQ_OK;
}

static void free_keys(char **k, size_t n)
{
    if (!k)
        return;
    for (size_t i = 0; i < n; i++)
        free(k[i]);
    free(k);
}

void dsq_manifest_free(struct dsq_manifest *m)
{
    if (!m)
        return;
    free(m->write_set);
    free(m->freed_set);
    free_keys(m->created, m->n_created);
    if (m->chunks)
        for (size_t i = 0; i < m->n_chunks; i++)
            free(m->chunks[i].key);
    free(m->chunks);
    free_keys(m->segments, m->n_segments);
    free(m->overlay);
    free(m->inline_text);
    free(m);
}

int dsq_ranges_contain(const struct dsq_range *r, size_t n, uint32_t pgno)
{
    /* the last range starting at or before pgno */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].start <= pgno)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    const struct dsq_range *x = &r[lo - 1];
    return (uint64_t)pgno < (uint64_t)x->start + x->count;
}

/* ------------------------------------------------------------------ */
/* root.json                                                            */

/*
 * root.json and gc.json share one shape: {"format": NAME, "format_version":
 * 1, FIELD: N, "time": T}.
 */
static dsq_rc small_encode(const char *what, const char *format,
                           const char *field, uint64_t value, uint64_t time_ms,
                           struct dsq_buf *out, struct dsq_err *e)
{
    if (value > DSQ_JSON_INT_MAX || !time_valid(time_ms))
        return dsq_err_set(e, DSQ_EINVAL, "%s: %s or time out of range", what,
                           field);
    size_t base = out->len;
    struct jw w = {out, DSQ_OK};
    jw_raw(&w, "{", 1);
    jw_key(&w, "format", 1);
    jw_str(&w, format);
    jw_key(&w, "format_version", 0);
    jw_u64(&w, ROOT_FORMAT);
    jw_key(&w, field, 0);
    jw_u64(&w, value);
    jw_key(&w, "time", 0);
    jw_time(&w, time_ms);
    jw_raw(&w, "}", 1);
    if (w.rc != DSQ_OK) {
        out->len = base;
        return dsq_err_set(e, w.rc, "%s: encoding: %s", what,
                           dsq_strerror(w.rc));
    }
    return DSQ_OK;
}

static dsq_rc small_decode(const uint8_t *data, size_t len, const char *key,
                           const char *what, const char *format,
                           const char *field, uint64_t *value,
                           uint64_t *time_ms, struct dsq_err *e)
{
    json_t *root = NULL;
    struct jr r = {"", 0};
    uint64_t v = 0, t = 0;
    const char *s;
    dsq_rc rc = jopen(data, len, DSQ_ROOT_MAX_BYTES, what, format, ROOT_FORMAT,
                      ROOT_FORMAT, key, &root, e);
    if (rc != DSQ_OK)
        return rc;
    if (jfield_u(&r, root, field, DSQ_JSON_INT_MAX, &v) < 0)
        goto bad;
    if (!(s = jfield_str(&r, root, "time")))
        goto bad;
    if (jtime(s, &t) < 0) {
        jr_fail(&r, "\"time\" is not a valid YYYY-MM-DDTHH:MM:SS.mmmZ");
        goto bad;
    }
    *value = v;
    *time_ms = t;
    goto out;
bad:
    rc = DSQ_CORRUPT(e, "%s %s: %s", what, OBJ_NAME(key), r.why);
out:
    json_decref(root);
    return rc;
}

dsq_rc dsq_root_encode(const struct dsq_root *r, struct dsq_buf *out,
                       struct dsq_err *e)
{
    return small_encode("root.json", "dsqlfs-root", "version", r->version,
                        r->time_ms, out, e);
}

dsq_rc dsq_root_decode(const uint8_t *data, size_t len, const char *key,
                       struct dsq_root *out, struct dsq_err *e)
{
    struct dsq_root v;
    dsq_rc rc = small_decode(data, len, key, "root", "dsqlfs-root", "version",
                             &v.version, &v.time_ms, e);
    if (rc == DSQ_OK)
        *out = v;
    return rc;
}

dsq_rc dsq_gcfloor_encode(const struct dsq_gcfloor *g, struct dsq_buf *out,
                          struct dsq_err *e)
{
    return small_encode("gc.json", "dsqlfs-gc", "floor", g->floor, g->time_ms,
                        out, e);
}

dsq_rc dsq_gcfloor_decode(const uint8_t *data, size_t len, const char *key,
                          struct dsq_gcfloor *out, struct dsq_err *e)
{
    struct dsq_gcfloor v;
    dsq_rc rc = small_decode(data, len, key, "gc floor", "dsqlfs-gc", "floor",
                             &v.floor, &v.time_ms, e);
    if (rc == DSQ_OK)
        *out = v;
    return rc;
}

/* ------------------------------------------------------------------ */
/* inline pages (format 2)                                              */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t dsq_b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int dsq_b64_decode(const char *text, size_t text_len, uint8_t *out, size_t n)
{
    if (text_len != dsq_b64_len(n))
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < text_len; i += 4) {
        size_t left = n - o; /* bytes this quad carries: 1, 2 or >= 3 */
        int v[4];
        for (int k = 0; k < 4; k++) {
            if (text[i + k] == '=' && left < 3 && k >= (int)left + 1) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_val(text[i + k]);
            if (v[k] < 0)
                return -1;
        }
        uint32_t x = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
                     ((uint32_t)v[2] << 6) | (uint32_t)v[3];
        if (left >= 3) {
            out[o++] = (uint8_t)(x >> 16);
            out[o++] = (uint8_t)(x >> 8);
            out[o++] = (uint8_t)x;
        } else if (left == 2) {
            if ((x & 0xff) != 0 || text[i + 3] != '=')
                return -1;
            out[o++] = (uint8_t)(x >> 16);
            out[o++] = (uint8_t)(x >> 8);
        } else {
            if ((x & 0xffff) != 0 || text[i + 2] != '=' || text[i + 3] != '=')
                return -1;
            out[o++] = (uint8_t)(x >> 16);
        }
    }
    return 0;
}

dsq_rc dsq_manifest_inline_append(struct dsq_manifest *m, const uint8_t *stored,
                                  size_t len, uint64_t *offset)
{
    size_t tl = dsq_b64_len(len);
    char *t = realloc(m->inline_text, m->inline_len + tl + 1);
    if (!t)
        return DSQ_ENOMEM;
    m->inline_text = t;
    char *p = t + m->inline_len;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t x = (uint32_t)stored[i] << 16;
        if (i + 1 < len)
            x |= (uint32_t)stored[i + 1] << 8;
        if (i + 2 < len)
            x |= stored[i + 2];
        *p++ = b64_alphabet[(x >> 18) & 63];
        *p++ = b64_alphabet[(x >> 12) & 63];
        *p++ = i + 1 < len ? b64_alphabet[(x >> 6) & 63] : '=';
        *p++ = i + 2 < len ? b64_alphabet[x & 63] : '=';
    }
    *p = 0;
    *offset = DSQ_MANIFEST_INLINE_OFFSET + m->inline_len;
    m->inline_len += tl;
    return DSQ_OK;
}

int dsq_key_is_manifest(const char *key, uint64_t *version)
{
    return dsq_manifest_key_parse(key, version) == 0;
}

/* ------------------------------------------------------------------ */
/* keys                                                                 */

#define MKEY_PREFIX "manifests/v"
#define MKEY_SUFFIX ".json"

void dsq_manifest_key(uint64_t version, char out[64])
{
    snprintf(out, 64, MKEY_PREFIX "%020llu" MKEY_SUFFIX,
             (unsigned long long)version);
}

int dsq_manifest_key_parse(const char *key, uint64_t *version)
{
    size_t pl = strlen(MKEY_PREFIX), sl = strlen(MKEY_SUFFIX);
    if (!key || strlen(key) != pl + 20 + sl ||
        memcmp(key, MKEY_PREFIX, pl) != 0 ||
        memcmp(key + pl + 20, MKEY_SUFFIX, sl) != 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = pl; i < pl + 20; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        unsigned d = (unsigned)(key[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *version = v;
    return 0;
}

dsq_rc dsq_forkpin_encode(const struct dsq_forkpin *p, struct dsq_buf *out,
                          struct dsq_err *e)
{
    return small_encode("fork pin", "dsqlfs-fork-pin", "version", p->version,
                        p->time_ms, out, e);
}

dsq_rc dsq_forkpin_decode(const uint8_t *data, size_t len, const char *key,
                          struct dsq_forkpin *out, struct dsq_err *e)
{
    struct dsq_forkpin v;
    dsq_rc rc = small_decode(data, len, key, "fork pin", "dsqlfs-fork-pin",
                             "version", &v.version, &v.time_ms, e);
    if (rc == DSQ_OK && v.version < 1)
        rc = DSQ_CORRUPT(e, "fork pin %s: version 0", OBJ_NAME(key));
    if (rc == DSQ_OK)
        *out = v;
    return rc;
}
