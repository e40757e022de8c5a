/*
 * store.c - the backend-independent part of the store interface: key
 * validation, the thin dispatchers that check arguments before calling a
 * backend, listing helpers and opening a store from a URL.
 *
 * Layer: services.  Every call into a backend goes through a dispatcher
 * here, so backends may assume valid keys, a valid condition and (for
 * DSQ_PUT_IF_MATCH) a non-empty etag.
 *
 * Thread-safety: no state of its own; the dispatchers are as thread-safe as
 * the backend they call (all backends are, see store.h).
 */
#include "store.h"
#include "config.h"
#include "env.h"
#include "store_s3.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ keys */

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        /* no overlongs (E0 A0..), no surrogates (ED 80..9F) */
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
        unsigned char hi = c == 0xED ? 0x9F : 0xBF;
        if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        /* no overlongs (F0 90..), nothing above U+10FFFF (F4 80..8F) */
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
        if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

#define RESERVED_PREFIX ".dsqtmp"

int dsq_store_key_valid(const char *key)
{
    if (!key || !key[0] || key[0] == '/')
        return 0;
    size_t len = strlen(key);
    if (len >= DSQ_KEY_MAX)
        return 0;
    const unsigned char *p = (const unsigned char *)key;
    const unsigned char *comp = p; /* start of the current component */
    while (1) {
        if (*p == '/' || *p == 0) {
            size_t clen = (size_t)(p - comp);
            if (clen == 0)
                return 0; /* "a//b", trailing '/' */
            if (clen == 1 && comp[0] == '.')
                return 0;
            if (clen == 2 && comp[0] == '.' && comp[1] == '.')
                return 0;
            if (clen >= sizeof(RESERVED_PREFIX) - 1 &&
                memcmp(comp, RESERVED_PREFIX, sizeof(RESERVED_PREFIX) - 1) == 0)
                return 0;
            if (*p == 0)
                return 1;
            comp = ++p;
            continue;
        }
        size_t n = utf8_seq_len(p);
        if (n == 0)
            return 0;
        p += n;
    }
}

static dsq_rc bad_key(struct dsq_err *e, const char *key)
{
    if (!key)
        return dsq_err_set(e, DSQ_EINVAL, "store key is NULL");
    if (strlen(key) >= DSQ_KEY_MAX)
        return dsq_err_set(e, DSQ_EINVAL,
                           "store key '%.64s...' is too long (max %d bytes)",
                           key, DSQ_KEY_MAX - 1);
    return dsq_err_set(e, DSQ_EINVAL,
                       "invalid store key '%s' (empty, '.', '..' or "
                       "reserved '.dsqtmp' component, leading '/', or not "
                       "UTF-8)",
                       key);
}

/* ----------------------------------------------------------- dispatchers */

static void (*wait_hook)(void); /* set once, before any thread uses a store */

void dsq_store_set_wait_hook(void (*hook)(void))
{
    wait_hook = hook;
}

/* Any call to a remote store may take long; on a local directory only
   writes (they fsync) and deletes do. */
static void may_wait(const struct dsq_store *st, int writes)
{
    if (wait_hook && (writes || strcmp(st->ops->name, "file") != 0))
        wait_hook();
}

void dsq_store_will_wait(struct dsq_store *st)
{
    may_wait(st, 0);
}

dsq_rc dsq_store_get(struct dsq_store *st, const char *key, uint64_t off,
                     uint64_t len, struct dsq_buf *out,
                     struct dsq_objinfo *info, struct dsq_err *e)
{
    if (!dsq_store_key_valid(key))
        return bad_key(e, key);
    if (!out)
        return dsq_err_set(e, DSQ_EINVAL, "get %s: no output buffer", key);
    may_wait(st, 0);
    return st->ops->get(st, key, off, len, out, info, e);
}

dsq_rc dsq_store_put(struct dsq_store *st, const char *key, const void *data,
                     size_t len, enum dsq_put_cond cond, const char *if_match,
                     struct dsq_objinfo *info, struct dsq_err *e)
{
    if (!dsq_store_key_valid(key))
        return bad_key(e, key);
    if (!data && len > 0)
        return dsq_err_set(e, DSQ_EINVAL, "put %s: no data", key);
    switch (cond) {
    case DSQ_PUT_ANY:
    case DSQ_PUT_CREATE:
        break;
    case DSQ_PUT_IF_MATCH:
        if (!if_match || !if_match[0] || strlen(if_match) >= DSQ_ETAG_MAX)
            return dsq_err_set(e, DSQ_EINVAL,
                               "put %s: DSQ_PUT_IF_MATCH needs an etag", key);
        break;
    default:
        return dsq_err_set(e, DSQ_EINVAL, "put %s: bad condition %d", key,
                           (int)cond);
    }
    may_wait(st, 1);
    return st->ops->put(st, key, data, len, cond, if_match, info, e);
}

dsq_rc dsq_store_head(struct dsq_store *st, const char *key,
                      struct dsq_objinfo *info, struct dsq_err *e)
{
    if (!dsq_store_key_valid(key))
        return bad_key(e, key);
    may_wait(st, 0);
    return st->ops->head(st, key, info, e);
}

dsq_rc dsq_store_list(struct dsq_store *st, const struct dsq_list_req *req,
                      struct dsq_list_page *out, struct dsq_err *e)
{
    if (!req || !out)
        return dsq_err_set(e, DSQ_EINVAL, "list: no request or no output");
    if (req->prefix && strlen(req->prefix) >= DSQ_KEY_MAX)
        return dsq_err_set(e, DSQ_EINVAL, "list: prefix '%.64s...' too long",
                           req->prefix);
    if (req->start_after && strlen(req->start_after) >= DSQ_KEY_MAX)
        return dsq_err_set(e, DSQ_EINVAL,
                           "list: start_after '%.64s...' too long",
                           req->start_after);
    may_wait(st, 0);
    return st->ops->list(st, req, out, e);
}

dsq_rc dsq_store_del(struct dsq_store *st, const char *key, struct dsq_err *e)
{
    if (!dsq_store_key_valid(key))
        return bad_key(e, key);
    may_wait(st, 1);
    return st->ops->del(st, key, e);
}

dsq_rc dsq_store_debris(struct dsq_store *st, const char *dir,
                        uint64_t before_ms, int do_delete, dsq_debris_fn fn,
                        void *arg, struct dsq_err *e)
{
    /* "" or a valid key followed by '/': never outside the store */
    size_t n = strlen(dir);
    if (n) {
        char k[DSQ_KEY_MAX];
        if (dir[n - 1] != '/' || n >= DSQ_KEY_MAX)
            return bad_key(e, dir);
        memcpy(k, dir, n - 1);
        k[n - 1] = 0;
        if (!dsq_store_key_valid(k))
            return bad_key(e, dir);
    }
    if (!st->ops->debris)
        return DSQ_OK;
    if (do_delete)
        may_wait(st, 1);
    return st->ops->debris(st, dir, before_ms, do_delete, fn, arg, e);
}

void dsq_store_free(struct dsq_store *st)
{
    if (st)
        st->ops->destroy(st);
}

/* -------------------------------------------------------------- listing */

void dsq_list_page_cleanup(struct dsq_list_page *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_entries; i++)
        free(p->entries[i].key);
    free(p->entries);
    for (size_t i = 0; i < p->n_prefixes; i++)
        free(p->common_prefixes[i]);
    free(p->common_prefixes);
    free(p->next_token);
    memset(p, 0, sizeof(*p));
}

dsq_rc dsq_store_list_all(struct dsq_store *st, const char *prefix,
                          const char *start_after, dsq_list_fn fn, void *arg,
                          struct dsq_err *e)
{
    char *token = NULL;
    dsq_rc rc = DSQ_OK;
    int first = 1;

    for (;;) {
        struct dsq_list_req req = {
            .prefix = prefix,
            /* the token supersedes start_after after the first page */
            .start_after = first ? start_after : NULL,
            .token = token,
        };
        struct dsq_list_page page = {0};
        rc = dsq_store_list(st, &req, &page, e);
        if (rc != DSQ_OK)
            goto out;
        first = 0;
        for (size_t i = 0; i < page.n_entries; i++) {
            if (fn(&page.entries[i], arg) != 0) {
                dsq_list_page_cleanup(&page);
                goto out;
            }
        }
        if (!page.next_token) {
            dsq_list_page_cleanup(&page);
            goto out;
        }
        if (token && strcmp(token, page.next_token) == 0) {
            rc = dsq_err_set(e, DSQ_EIO,
                             "list %s: store returned the same continuation "
                             "token twice",
                             prefix ? prefix : "");
            dsq_list_page_cleanup(&page);
            goto out;
        }
        free(token);
        token = page.next_token; /* take ownership */
        page.next_token = NULL;
        dsq_list_page_cleanup(&page);
    }
out:
    free(token);
    return rc;
}

/* ----------------------------------------------------------------- open */

/*
 * THE hook for the S3 backend.  When store_s3.c lands, replace the body
 * with:  return dsq_store_s3_open(url, cfg, out, e);
 * (and declare dsq_store_s3_open next to dsq_store_file_open in store.h).
 */
static dsq_rc open_s3(const char *url, const struct dsq_config *cfg,
                      struct dsq_store **out, struct dsq_err *e)
{
    return dsq_store_s3_open(url, cfg, out, e);
}

dsq_rc dsq_store_check_conditional(struct dsq_store *st, struct dsq_err *e)
{
    if (!strcmp(st->ops->name, "s3"))
        return dsq_store_s3_selftest(st, e);
    /* any other store: a second create of a probe key must be refused */
    char key[128], hex[33];
    dsq_random_hex32(hex);
    snprintf(key, sizeof(key), ".dsqlfs-probe/%s", hex);
    dsq_rc rc =
        dsq_store_put(st, key, "probe", 5, DSQ_PUT_CREATE, NULL, NULL, e);
    if (rc != DSQ_OK) {
        dsq_err_prefix(e, "writing a probe object");
        return rc;
    }
    struct dsq_err e2;
    dsq_err_clear(&e2);
    dsq_rc rc2 =
        dsq_store_put(st, key, "probe", 5, DSQ_PUT_CREATE, NULL, NULL, &e2);
    dsq_store_del(st, key, NULL);
    if (rc2 == DSQ_OK)
        return dsq_err_set(e, DSQ_EUNSUPPORTED,
                           "the store ignores create-only writes, so "
                           "concurrent commits could overwrite each other");
    if (rc2 != DSQ_EPRECOND)
        return dsq_err_set(e, rc2, "probing conditional writes: %s",
                           dsq_err_text(&e2, rc2));
    return DSQ_OK;
}

static dsq_rc open_file(const char *url, const struct dsq_config *cfg,
                        struct dsq_store **out, struct dsq_err *e)
{
    const char *path = url + strlen("file://");
    if (path[0] != '/')
        return dsq_err_set(e, DSQ_EINVAL,
                           "store URL '%s': expected file:///absolute/path",
                           url);
    /* drop trailing slashes ("file:///x/" is the directory /x) */
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    char *dir = strndup(path, n);
    if (!dir)
        return dsq_err_set(e, DSQ_ENOMEM, "store URL '%s': out of memory", url);
    dsq_rc rc = dsq_store_file_open_mode(
        dir, cfg ? cfg->store_mode : DSQ_STORE_MODE_DEFAULT, out, e);
    free(dir);
    return rc;
}

dsq_rc dsq_store_open(const char *url, const struct dsq_config *cfg,
                      struct dsq_store **out, struct dsq_err *e)
{
    if (!url || !out)
        return dsq_err_set(e, DSQ_EINVAL, "store URL is missing");
    if (strncmp(url, "file://", 7) == 0)
        return open_file(url, cfg, out, e);
    if (strncmp(url, "s3://", 5) == 0)
        return open_s3(url, cfg, out, e);
    return dsq_err_set(e, DSQ_EINVAL,
                       "unsupported store URL '%s': expected "
                       "file:///absolute/dir or s3://bucket[/prefix]",
                       url);
}

/*
 * Split a database URL into the store URL and the database prefix: the
 * last path component names the database.
 */
dsq_rc dsq_url_split(const char *url, char **store_url, char **prefix,
                     struct dsq_err *e)
{
    const char *scheme_end = strstr(url, "://");
    if (!scheme_end)
        return dsq_err_set(e, DSQ_EINVAL,
                           "'%s' is not a URL (use file:///abs/dir/NAME or "
                           "s3://BUCKET/[PREFIX/]NAME)",
                           url);
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    const char *body = scheme_end + 3;
    const char *last = NULL;
    for (const char *p = body; p < url + len; p++)
        if (*p == '/')
            last = p;
    int is_file = !strncmp(url, "file://", 7);
    /* file:///NAME has the store "/", s3://BUCKET/NAME has "s3://BUCKET" */
    if (!last || last + 1 >= url + len || (!is_file && last == body - 1))
        return dsq_err_set(e, DSQ_EINVAL,
                           "'%s' names no database (the last path "
                           "component is the database name)",
                           url);
    size_t slen = (size_t)(last - url);
    if (is_file && last == body)
        slen++; /* keep the root "/" */
    *store_url = strndup(url, slen);
    *prefix = strndup(last + 1, (size_t)(url + len - last - 1));
    if (!*store_url || !*prefix) {
        free(*store_url);
        free(*prefix);
        return DSQ_ENOMEM;
    }
    return DSQ_OK;
}
