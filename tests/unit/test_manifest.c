/*
 * test_manifest.c - the manifest and root.json codecs (manifest.c): exact
 * encoded text, round trips, equivalence with jansson's compact dump, and
 * rejection of every malformed, out-of-range or inconsistent field.
 * Format: docs/format.md.
 */
#include "codec_eq.h"
#include "log.h"
#include "manifest.h"

#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *WRITER = "00112233445566778899aabbccddeeff";
static const char *TXN = "ffeeddccbbaa99887766554433221100";
#define T_MS 1764089099123ull /* 2025-11-25T16:44:59.123Z */

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A manifest using every field. */
static struct dsq_manifest *sample(void)
{
    struct dsq_manifest *m = calloc(1, sizeof(*m));
    m->version = 12;
    m->parent = 11;
    m->page_size = 4096;
    m->page_count = 300;
    strcpy(m->writer_id, WRITER);
    strcpy(m->txn_id, TXN);
    m->time_ms = T_MS;
    m->n_write = 3;
    m->write_set = calloc(3, sizeof(struct dsq_range));
    m->write_set[0] = (struct dsq_range){1, 1};
    m->write_set[1] = (struct dsq_range){5, 3};
    m->write_set[2] = (struct dsq_range){129, 2};
    m->n_freed = 1;
    m->freed_set = calloc(1, sizeof(struct dsq_range));
    m->freed_set[0] = (struct dsq_range){200, 4};
    m->page1 = DSQ_PAGE1_COUNTERS;
    m->n_created = 2;
    m->created = calloc(2, sizeof(char *));
    m->created[0] = xstrdup("segments/s2.seg");
    m->created[1] = xstrdup("pagetables/c3.ptc");
    m->ckpt_version = 10;
    m->ckpt_page_limit = 256;
    m->chunk_pages = 64;
    m->n_chunks = 2;
    m->chunks = calloc(2, sizeof(struct dsq_chunk_ref));
    m->chunks[0] =
        (struct dsq_chunk_ref){0, xstrdup("pagetables/c0.ptc"), 1234, 0xff};
    m->chunks[1] =
        (struct dsq_chunk_ref){3, xstrdup("pagetables/c3.ptc"), 99, UINT64_MAX};
    m->n_segments = 2;
    m->segments = calloc(2, sizeof(char *));
    m->segments[0] = xstrdup("segments/s1.seg");
    m->segments[1] = xstrdup("segments/s2.seg");
    m->n_overlay = 4;
    m->overlay = calloc(4, sizeof(struct dsq_page_loc));
    m->overlay[0] =
        (struct dsq_page_loc){1, 0, 57, 4096, 0, 0x0123456789abcdefull};
    m->overlay[1] = (struct dsq_page_loc){5, 1, 90, 33, 1, 0};
    m->overlay[2] = (struct dsq_page_loc){6, 1, 123, 40, 1, 1};
    m->overlay[3] =
        (struct dsq_page_loc){299, 0, 1081, 4096, 0, 0xfedcba9876543210ull};
    return m;
}

static const char SAMPLE_JSON[] =
    "{\"format\":\"dsqlfs-manifest\",\"format_version\":1,\"version\":12,"
    "\"parent\":11,\"page_size\":4096,\"page_count\":300,"
    "\"writer_id\":\"00112233445566778899aabbccddeeff\","
    "\"txn_id\":\"ffeeddccbbaa99887766554433221100\","
    "\"time\":\"2025-11-25T16:44:59.123Z\","
    "\"write_set\":[[1,1],[5,3],[129,2]],\"freed_set\":[[200,4]],"
    "\"page1\":\"counters\","
    "\"created\":[\"segments/s2.seg\",\"pagetables/c3.ptc\"],"
    "\"checkpoint\":{\"version\":10,\"page_limit\":256,\"chunk_pages\":64,"
    "\"chunks\":[[0,\"pagetables/c0.ptc\",1234,\"00000000000000ff\"],"
    "[3,\"pagetables/c3.ptc\",99,\"ffffffffffffffff\"]]},"
    "\"overlay\":{\"segments\":[\"segments/s1.seg\",\"segments/s2.seg\"],"
    "\"pages\":[[1,0,57,4096,0,\"0123456789abcdef\"],"
    "[5,1,90,33,1,\"0000000000000000\"],[6,1,123,40,1,\"0000000000000001\"],"
    "[299,0,1081,4096,0,\"fedcba9876543210\"]]}}";

static void encode_ok(const struct dsq_manifest *m, struct dsq_buf *out)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_buf_init(out, DSQ_MANIFEST_MAX_BYTES);
    dsq_rc rc = dsq_manifest_encode(m, out, &e);
    ck_assert_msg(rc == DSQ_OK, "encode: %s", e.msg);
}

static dsq_rc decode_str(const char *s, struct dsq_err *e)
{
    struct dsq_manifest *m = NULL;
    dsq_rc rc = dsq_manifest_decode((const uint8_t *)s, strlen(s), "m", &m, e);
    if (rc == DSQ_OK) {
        /* whatever decodes re-encodes to something that decodes equal */
        struct dsq_buf b;
        encode_ok(m, &b);
        struct dsq_manifest *m2 = NULL;
        ck_assert_int_eq(dsq_manifest_decode(b.data, b.len, "m", &m2, NULL),
                         DSQ_OK);
        ck_assert(dsq_eq_manifest(m, m2));
        dsq_manifest_free(m2);
        dsq_buf_cleanup(&b);
        dsq_manifest_free(m);
    } else {
        ck_assert_ptr_null(m);
    }
    return rc;
}

/* ---- encoding ---- */

START_TEST(test_exact_text)
{
    struct dsq_manifest *m = sample();
    struct dsq_buf out;
    encode_ok(m, &out);
    ck_assert_uint_eq(out.len, strlen(SAMPLE_JSON));
    ck_assert_mem_eq(out.data, SAMPLE_JSON, out.len);
    dsq_buf_cleanup(&out);
    dsq_manifest_free(m);
}
END_TEST

START_TEST(test_roundtrip)
{
    struct dsq_manifest *m = sample();
    struct dsq_buf out;
    encode_ok(m, &out);
    struct dsq_manifest *d = NULL;
    struct dsq_err e;
    ck_assert_int_eq(dsq_manifest_decode(out.data, out.len, "m", &d, &e),
                     DSQ_OK);
    ck_assert(dsq_eq_manifest(m, d));
    struct dsq_buf again;
    encode_ok(d, &again);
    ck_assert_uint_eq(again.len, out.len);
    ck_assert_mem_eq(again.data, out.data, out.len);
    dsq_buf_cleanup(&again);
    dsq_manifest_free(d);
    dsq_buf_cleanup(&out);
    dsq_manifest_free(m);
}
END_TEST

/* The smallest manifest: nothing written, no checkpoint, no overlay. */
START_TEST(test_empty_manifest)
{
    struct dsq_manifest m;
    memset(&m, 0, sizeof(m));
    m.version = 1;
    m.page_size = 512;
    strcpy(m.writer_id, WRITER);
    strcpy(m.txn_id, TXN);
    m.time_ms = 0;
    m.chunk_pages = 1024;
    struct dsq_buf out;
    encode_ok(&m, &out);
    static const char want[] =
        "{\"format\":\"dsqlfs-manifest\",\"format_version\":1,\"version\":1,"
        "\"parent\":0,\"page_size\":512,\"page_count\":0,"
        "\"writer_id\":\"00112233445566778899aabbccddeeff\","
        "\"txn_id\":\"ffeeddccbbaa99887766554433221100\","
        "\"time\":\"1970-01-01T00:00:00.000Z\",\"write_set\":[],"
        "\"freed_set\":[],\"page1\":\"none\",\"created\":[],"
        "\"checkpoint\":{\"version\":0,\"page_limit\":0,\"chunk_pages\":1024,"
        "\"chunks\":[]},\"overlay\":{\"segments\":[],\"pages\":[]}}";
    ck_assert_uint_eq(out.len, strlen(want));
    ck_assert_mem_eq(out.data, want, out.len);
    struct dsq_manifest *d;
    ck_assert_int_eq(dsq_manifest_decode(out.data, out.len, "m", &d, NULL),
                     DSQ_OK);
    ck_assert(dsq_eq_manifest(&m, d));
    ck_assert_ptr_null(d->write_set);
    ck_assert_ptr_null(d->overlay);
    dsq_manifest_free(d);
    dsq_buf_cleanup(&out);
}
END_TEST

/* Our bytes are exactly jansson's compact, order-preserving dump. */
START_TEST(test_jansson_equivalence)
{
    struct dsq_manifest *m = sample();
    /* keys that need escaping or carry UTF-8 */
    free(m->segments[1]);
    m->segments[1] = xstrdup("segments/quote\"back\\slash/\xc3\xa9\xe2\x82\xac"
                             "\xf0\x9f\x98\x80.seg");
    free(m->created[0]);
    m->created[0] = xstrdup(m->segments[1]);
    m->page1 = DSQ_PAGE1_CHANGED;
    for (int round = 0; round < 2; round++) {
        struct dsq_buf out;
        encode_ok(m, &out);
        json_error_t jerr;
        json_t *j = json_loadb((const char *)out.data, out.len, 0, &jerr);
        ck_assert_ptr_nonnull(j);
        char *dump = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ck_assert_uint_eq(strlen(dump), out.len);
        ck_assert_mem_eq(dump, out.data, out.len);
        free(dump);
        json_decref(j);
        dsq_buf_cleanup(&out);
        m->page1 = DSQ_PAGE1_NONE;
    }
    dsq_manifest_free(m);
}
END_TEST

/* The encoder refuses every invalid struct (EINVAL) and leaves out as is. */
START_TEST(test_encode_rejects)
{
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 20);
    dsq_buf_append_str(&out, "prefix");
    for (int k = 0;; k++) {
        struct dsq_manifest *m = sample();
        switch (k) {
        case 0:
            m->version = 0;
            break;
        case 1:
            m->parent = 10;
            break;
        case 2:
            m->page_size = 1000;
            break;
        case 3:
            m->page_count = 4294967295u;
            break;
        case 4:
            m->writer_id[3] = 'A';
            break;
        case 5:
            m->txn_id[31] = 0;
            break;
        case 6:
            m->time_ms = 253402300800000ull;
            break;
        case 7:
            m->write_set[1].start = 1;
            break;
        case 8:
            m->write_set[1].count = 0;
            break;
        case 9:
            m->write_set[1] = (struct dsq_range){2, 1};
            break;
        case 10:
            m->freed_set[0] = (struct dsq_range){0xffffffffu, 2};
            break;
        case 11:
            m->page1 = (enum dsq_page1_change)3;
            break;
        case 12:
            m->created[0][0] = '/';
            break;
        case 13:
            m->ckpt_version = 13;
            break;
        case 14:
            m->chunk_pages = 96;
            break;
        case 15:
            m->ckpt_page_limit = 301;
            break;
        case 16:
            m->chunks[1].index = 0;
            break;
        case 17:
            m->chunks[1].index = 1u << 26;
            break;
        case 18:
            m->chunks[0].size = 0;
            break;
        case 19:
            m->chunks[0].key[0] = 'P';
            break;
        case 20:
            m->segments[0][3] = 0;
            break;
        case 21:
            m->overlay[3].pgno = 301;
            break;
        case 22:
            m->overlay[2].pgno = 5;
            break;
        case 23:
            m->overlay[1].seg = 2;
            break;
        case 24:
            m->overlay[0].length = 4095;
            break;
        case 25:
            m->overlay[1].length = DSQ_STORED_PAGE_MAX + 1;
            break;
        case 26:
            m->overlay[1].codec = 2;
            break;
        case 27:
            m->overlay[0].offset = DSQ_JSON_INT_MAX;
            break;
        case 28:
            m->ckpt_version = 0;
            break; /* chunks without checkpoint */
        case 29:
            m->version = DSQ_JSON_INT_MAX + 1;
            break;
        case 30:
            m->overlay[0].pgno = 0;
            break;
        default:
            dsq_manifest_free(m);
            goto done;
        }
        struct dsq_err e;
        dsq_err_clear(&e);
        ck_assert_msg(dsq_manifest_encode(m, &out, &e) == DSQ_EINVAL, "case %d",
                      k);
        ck_assert_uint_eq(out.len, 6);
        ck_assert_str_ne(e.msg, "");
        dsq_manifest_free(m);
    }
done:
    /* a cap too small for the text: ERANGE, out as it was */
    {
        struct dsq_manifest *m = sample();
        struct dsq_buf small;
        dsq_buf_init(&small, 100);
        ck_assert_int_eq(dsq_manifest_encode(m, &small, NULL), DSQ_ERANGE);
        ck_assert_uint_eq(small.len, 0);
        dsq_buf_cleanup(&small);
        dsq_manifest_free(m);
    }
    dsq_buf_cleanup(&out);
}
END_TEST

/* ---- decoding: mutations of the sample's JSON ---- */

/*
 * Decode the sample with the value at path (dot-separated object keys)
 * replaced by the JSON text val, or removed if val is NULL.
 */
static dsq_rc mutate(const char *path, const char *val, struct dsq_err *e)
{
    json_error_t jerr;
    json_t *root = json_loads(SAMPLE_JSON, 0, &jerr);
    ck_assert_ptr_nonnull(root);
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *obj = root;
    char *name = buf, *dot;
    while ((dot = strchr(name, '.'))) {
        *dot = 0;
        obj = json_object_get(obj, name);
        ck_assert_ptr_nonnull(obj);
        name = dot + 1;
    }
    if (val) {
        json_t *v = json_loads(val, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        ck_assert_msg(v != NULL, "bad test value %s", val);
        json_object_set_new(obj, name, v);
    } else {
        ck_assert_int_eq(json_object_del(obj, name), 0);
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    dsq_rc rc = decode_str(text, e);
    free(text);
    return rc;
}

/* Decode the sample's text with the first from replaced by to. */
static dsq_rc subst(const char *from, const char *to)
{
    const char *at = strstr(SAMPLE_JSON, from);
    ck_assert_ptr_nonnull(at);
    size_t pre = (size_t)(at - SAMPLE_JSON);
    char *t = malloc(sizeof(SAMPLE_JSON) + strlen(to));
    memcpy(t, SAMPLE_JSON, pre);
    strcpy(t + pre, to);
    strcat(t, at + strlen(from));
    dsq_rc rc = decode_str(t, NULL);
    free(t);
    return rc;
}

static void bad(const char *path, const char *val)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_msg(mutate(path, val, &e) == DSQ_ECORRUPT, "%s = %s accepted",
                  path, val ? val : "(deleted)");
    ck_assert_ptr_nonnull(strstr(e.msg, "manifest m"));
}

static void good(const char *path, const char *val)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_msg(mutate(path, val, &e) == DSQ_OK, "%s = %s: %s", path,
                  val ? val : "(deleted)", e.msg);
}

#define BAD(path, val) bad(path, val)
#define GOOD(path, val) good(path, val)

START_TEST(test_reference_decodes)
{
    ck_assert_int_eq(decode_str(SAMPLE_JSON, NULL), DSQ_OK);
    GOOD("version", "12");
}
END_TEST

START_TEST(test_missing_fields)
{
    static const char *top[] = {
        "format",     "format_version", "version", "parent",     "page_size",
        "page_count", "writer_id",      "txn_id",  "time",       "write_set",
        "freed_set",  "page1",          "created", "checkpoint", "overlay"};
    for (size_t i = 0; i < sizeof(top) / sizeof(*top); i++)
        BAD(top[i], NULL);
    BAD("checkpoint.version", NULL);
    BAD("checkpoint.page_limit", NULL);
    BAD("checkpoint.chunk_pages", NULL);
    BAD("checkpoint.chunks", NULL);
    BAD("overlay.segments", NULL);
    BAD("overlay.pages", NULL);
}
END_TEST

START_TEST(test_format_and_version)
{
    BAD("format", "\"dsqlfs-root\"");
    BAD("format", "\"dsqlfs-manifest \"");
    BAD("format", "1");
    BAD("format_version", "\"1\"");
    BAD("format_version", "1.0");
    BAD("format_version", "-1");
    BAD("format_version", "null");
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_int_eq(mutate("format_version", "5", &e), DSQ_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(e.msg, "format_version 5"));
    ck_assert_ptr_nonnull(strstr(e.msg, "1 to 4"));
    /* a format-1 body under format_version 3 lacks the fixed prefix */
    BAD("format_version", "3");
    BAD("format_version", "4");
    ck_assert_int_eq(mutate("format_version", "0", NULL), DSQ_EUNSUPPORTED);
    /* a format-1 body under format_version 2 lacks the fixed prefix */
    BAD("format_version", "2");
    /* an unknown version is unsupported even if the rest is unknown too */
    ck_assert_int_eq(
        decode_str("{\"format\":\"dsqlfs-manifest\",\"format_version\":7}",
                   NULL),
        DSQ_EUNSUPPORTED);
}
END_TEST

START_TEST(test_scalar_fields)
{
    BAD("version", "0");
    BAD("version", "-12");
    BAD("version", "12.0");
    BAD("version", "\"12\"");
    BAD("version", "1e1");
    BAD("version", "9007199254740992"); /* 2^53 */
    BAD("parent", "10");
    BAD("parent", "12");
    BAD("page_size", "1000");
    BAD("page_size", "256");
    BAD("page_size", "131072");
    BAD("page_size", "4294971392"); /* 2^32 + 4096 */
    BAD("page_count", "4294967295");
    BAD("page_count", "-1");
    BAD("page_count", "298"); /* below the overlay's page 299 */
    BAD("writer_id", "\"00112233445566778899AABBCCDDEEFF\"");
    BAD("writer_id", "\"00112233445566778899aabbccddeef\"");
    BAD("writer_id", "\"00112233445566778899aabbccddeeff0\"");
    BAD("writer_id", "\"0011223344556677-899aabbccddeeff\"");
    BAD("txn_id", "12");
    BAD("time", "\"2025-11-25T16:44:59.123\"");
    BAD("time", "\"2025-11-25 16:44:59.123Z\"");
    BAD("time", "\"2025-11-25T16:44:59.12Z\"");
    BAD("time", "\"2025-11-25T16:44:59Z\"");
    BAD("time", "\"2025-02-30T00:00:00.000Z\""); /* not canonical */
    BAD("time", "\"2025-11-25T16:44:60.000Z\"");
    BAD("time", "\"2025-11- 5T16:44:59.123Z\"");
    BAD("time", "\"+025-11-25T16:44:59.123Z\"");
    BAD("time", "\"1969-12-31T23:59:59.999Z\"");
    BAD("time", "1764089099123");
    BAD("page1", "\"some\"");
    BAD("page1", "\"None\"");
    BAD("page1", "1");
    GOOD("page1", "\"none\"");
    GOOD("page1", "\"changed\"");
    GOOD("time", "\"1970-01-01T00:00:00.000Z\"");
    GOOD("time", "\"9999-12-31T23:59:59.999Z\"");
    GOOD("time", "\"2024-02-29T12:00:00.001Z\"");
    GOOD("page_count", "4294967294");
    /* beyond json_int_t: jansson refuses the text itself */
    ck_assert_int_eq(
        subst("\"version\":12,", "\"version\":99999999999999999999,"),
        DSQ_ECORRUPT);
    ck_assert_int_eq(subst("\"page_count\":300,", "\"page_count\":300.0,"),
                     DSQ_ECORRUPT);
    ck_assert_int_eq(subst("\"page_count\":300,", "\"page_count\":0300,"),
                     DSQ_ECORRUPT);
    ck_assert_int_eq(subst("\"page_count\":300,", "\"page_count\": 300 ,"),
                     DSQ_OK);
}
END_TEST

START_TEST(test_ranges)
{
    static const char *sets[] = {"write_set", "freed_set"};
    for (int i = 0; i < 2; i++) {
        const char *f = sets[i];
        GOOD(f, "[]");
        GOOD(f, "[[1,1]]");
        GOOD(f, "[[1,2],[4,1]]");
        GOOD(f, "[[4294967295,1]]");
        GOOD(f, "[[1,4294967295]]");
        BAD(f, "[[0,1]]");
        BAD(f, "[[1,0]]");
        BAD(f, "[[5,1],[1,1]]");    /* unsorted */
        BAD(f, "[[1,2],[2,1]]");    /* overlapping */
        BAD(f, "[[1,2],[3,1]]");    /* adjacent */
        BAD(f, "[[1,1],[1,1]]");    /* duplicate */
        BAD(f, "[[4294967295,2]]"); /* past 2^32-1 */
        BAD(f, "[[2,4294967295]]");
        BAD(f, "[[4294967296,1]]");
        BAD(f, "[[1]]");
        BAD(f, "[[1,2,3]]");
        BAD(f, "[1,2]");
        BAD(f, "[[-1,1]]");
        BAD(f, "[[\"1\",1]]");
        BAD(f, "[[1.5,1]]");
        BAD(f, "{}");
        BAD(f, "null");
    }
    /* freed pages may lie beyond page_count (truncation) */
    GOOD("freed_set", "[[301,1000]]");
}
END_TEST

START_TEST(test_keys_fields)
{
    GOOD("created", "[]");
    GOOD("created", "[\"segments/a\",\"segments/a\"]");
    BAD("created", "[\"/segments/a\"]");
    BAD("created", "[\"segments/\"]");
    BAD("created", "[\"other/a\"]");
    BAD("created", "[\"manifests/v00000000000000000001.json\"]");
    BAD("created", "[\"segments/../x\"]");
    BAD("created", "[\"segments/a\\u0000b\"]");
    BAD("created", "[\"segments/a\\nb\"]");
    BAD("created", "[\"\"]");
    BAD("created", "[1]");
    BAD("created", "\"segments/a\"");
    char longk[1200];
    strcpy(longk, "[\"segments/");
    memset(longk + 11, 'a', 1030);
    strcpy(longk + 1041, "\"]");
    BAD("created", longk);
    longk[11 + 1015] = 0; /* 9 + 1015 = 1024 bytes */
    strcat(longk, "\"]");
    GOOD("created", longk);
    BAD("overlay.segments", "[\"pagetables/a\",\"segments/b\"]");
    BAD("overlay.segments", "[\"segments/a\"]"); /* seg 1 now dangling */
    GOOD("overlay.segments", "[\"segments/a\",\"segments/b\",\"segments/c\"]");
}
END_TEST

START_TEST(test_checkpoint_fields)
{
    BAD("checkpoint", "[]");
    BAD("checkpoint.version", "13");
    GOOD("checkpoint.version", "12");
    BAD("checkpoint.version", "0"); /* chunks without a checkpoint */
    BAD("checkpoint.page_limit", "301");
    GOOD("checkpoint.page_limit", "300");
    GOOD("checkpoint.page_limit", "0");
    BAD("checkpoint.chunk_pages", "100");
    BAD("checkpoint.chunk_pages", "32");
    BAD("checkpoint.chunk_pages", "2097152");
    BAD("checkpoint.chunk_pages", "0");
    GOOD("checkpoint.chunk_pages", "1048576");
    GOOD("checkpoint.chunks", "[]");
    GOOD("checkpoint.chunks",
         "[[67108863,\"pagetables/x\",1,\"0000000000000000\"]]");
    BAD("checkpoint.chunks",
        "[[67108864,\"pagetables/x\",1,\"0000000000000000\"]]");
    BAD("checkpoint.chunks", "[[3,\"pagetables/a\",1,\"0000000000000000\"],"
                             "[0,\"pagetables/b\",1,\"0000000000000000\"]]");
    BAD("checkpoint.chunks", "[[3,\"pagetables/a\",1,\"0000000000000000\"],"
                             "[3,\"pagetables/b\",1,\"0000000000000000\"]]");
    BAD("checkpoint.chunks", "[[0,\"segments/x\",1,\"0000000000000000\"]]");
    BAD("checkpoint.chunks", "[[0,\"pagetables/x\",0,\"0000000000000000\"]]");
    BAD("checkpoint.chunks",
        "[[0,\"pagetables/x\",9007199254740992,\"0000000000000000\"]]");
    BAD("checkpoint.chunks", "[[0,\"pagetables/x\",1,\"000000000000000F\"]]");
    BAD("checkpoint.chunks", "[[0,\"pagetables/x\",1,\"000000000000000\"]]");
    BAD("checkpoint.chunks", "[[0,\"pagetables/x\",1,\"00000000000000000\"]]");
    BAD("checkpoint.chunks", "[[0,\"pagetables/x\",1,\"-000000000000000\"]]");
    BAD("checkpoint.chunks", "[[0,\"pagetables/x\",1,\" 000000000000000\"]]");
    BAD("checkpoint.chunks", "[[0,\"pagetables/x\",1,15]]");
    BAD("checkpoint.chunks", "[[0,\"pagetables/x\",1]]");
    BAD("checkpoint.chunks", "[[0,1,1,\"0000000000000000\"]]");
    BAD("checkpoint.chunks", "[{}]");
}
END_TEST

START_TEST(test_overlay_fields)
{
    BAD("overlay", "{}");
    GOOD("overlay.pages", "[]");
    GOOD("overlay.pages", "[[300,1,0,66560,1,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[0,0,0,4096,0,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[301,0,0,4096,0,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[2,0,0,4096,0,\"0000000000000000\"],"
                         "[1,0,0,4096,0,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[2,0,0,4096,0,\"0000000000000000\"],"
                         "[2,0,0,4096,0,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[1,2,0,4096,0,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[1,0,0,4095,0,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[1,0,0,0,1,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[1,0,0,66561,1,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[1,0,0,4096,2,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[1,0,0,4096,256,\"0000000000000000\"]]");
    BAD("overlay.pages",
        "[[1,0,9007199254740991,4096,0,\"0000000000000000\"]]");
    GOOD("overlay.pages",
         "[[1,0,9007199254736895,4096,0,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[1,0,0,4096,0,\"000000000000000g\"]]");
    BAD("overlay.pages", "[[1,0,0,4096,0]]");
    BAD("overlay.pages", "[[1,0,0,4096,0,\"0000000000000000\",7]]");
    BAD("overlay.pages", "[[1,0,-1,4096,0,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[1,0,0.0,4096,0,\"0000000000000000\"]]");
    BAD("overlay.pages", "[[1,4294967296,0,4096,0,\"0000000000000000\"]]");
}
END_TEST

START_TEST(test_unknown_keys_ignored)
{
    GOOD("future", "{\"anything\":[1,2,3]}");
    GOOD("checkpoint.future", "1");
    GOOD("overlay.future", "\"x\"");
}
END_TEST

START_TEST(test_bad_json)
{
    static const char *cases[] = {
        "",
        "[]",
        "\"x\"",
        "12",
        "null",
        "{",
        ("{\"format\":\"dsqlfs-manifest\",\"format\":\"dsqlfs-manifest\","
         "\"format_version\":1}"), /* duplicate key */
        "{\"format\":\"dsqlfs-manifest\",\"format_version\":1} x",
        "{\"format\":\"dsqlfs-manifest\",\"format_version\":1}{}",
        "{\"format\":\"dsqlfs-\xff\",\"format_version\":1}",
        "{'format':'dsqlfs-manifest'}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct dsq_err e;
        dsq_err_clear(&e);
        ck_assert_msg(decode_str(cases[i], &e) == DSQ_ECORRUPT, "#%zu", i);
    }
    /* trailing garbage after a valid manifest; trailing whitespace is JSON */
    char *s = malloc(sizeof(SAMPLE_JSON) + 2);
    strcpy(s, SAMPLE_JSON);
    strcat(s, "x");
    ck_assert_int_eq(decode_str(s, NULL), DSQ_ECORRUPT);
    strcpy(s, SAMPLE_JSON);
    strcat(s, "\n");
    ck_assert_int_eq(decode_str(s, NULL), DSQ_OK);
    /* a NUL inside the buffer */
    strcpy(s, SAMPLE_JSON);
    s[40] = 0;
    struct dsq_manifest *m = NULL;
    ck_assert_int_eq(dsq_manifest_decode((const uint8_t *)s,
                                         sizeof(SAMPLE_JSON) - 1, "m", &m,
                                         NULL),
                     DSQ_ECORRUPT);
    free(s);
    /* a body over the cap is refused before parsing */
    size_t big = (size_t)DSQ_MANIFEST_MAX_BYTES + 1;
    uint8_t *huge = calloc(1, big);
    ck_assert_ptr_nonnull(huge);
    ck_assert_int_eq(dsq_manifest_decode(huge, big, "m", &m, NULL),
                     DSQ_ECORRUPT);
    free(huge);
}
END_TEST

START_TEST(test_truncations)
{
    size_t n = sizeof(SAMPLE_JSON) - 1;
    for (size_t len = 0; len < n; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, SAMPLE_JSON, len);
        struct dsq_manifest *m = NULL;
        struct dsq_err e;
        dsq_err_clear(&e);
        ck_assert_int_eq(dsq_manifest_decode(copy, len, "m", &m, &e),
                         DSQ_ECORRUPT);
        ck_assert_ptr_null(m);
        free(copy);
    }
}
END_TEST

START_TEST(test_flips)
{
    size_t n = sizeof(SAMPLE_JSON) - 1;
    uint8_t *copy = malloc(n + 1);
    static const uint8_t masks[] = {0x01, 0x02, 0x20, 0x80};
    for (size_t pos = 0; pos < n; pos++) {
        for (size_t k = 0; k < sizeof(masks); k++) {
            memcpy(copy, SAMPLE_JSON, n + 1);
            copy[pos] ^= masks[k];
            struct dsq_manifest *m = NULL;
            dsq_rc rc = dsq_manifest_decode(copy, n, "m", &m, NULL);
            if (rc == DSQ_OK) {
                /* a digit changed into another valid value: it must be a
                   fully valid manifest */
                struct dsq_buf b;
                encode_ok(m, &b);
                dsq_buf_cleanup(&b);
                dsq_manifest_free(m);
            } else {
                ck_assert(rc == DSQ_ECORRUPT || rc == DSQ_EUNSUPPORTED);
            }
        }
    }
    free(copy);
}
END_TEST

/* ---- clone, ranges ---- */

START_TEST(test_clone)
{
    struct dsq_manifest *m = sample();
    struct dsq_manifest *c = NULL;
    ck_assert_int_eq(dsq_manifest_clone(m, &c), DSQ_OK);
    ck_assert(dsq_eq_manifest(m, c));
    ck_assert_ptr_ne(c->write_set, m->write_set);
    ck_assert_ptr_ne(c->created[0], m->created[0]);
    ck_assert_ptr_ne(c->chunks[0].key, m->chunks[0].key);
    ck_assert_ptr_ne(c->segments[1], m->segments[1]);
    ck_assert_ptr_ne(c->overlay, m->overlay);
    c->overlay[0].checksum = 7;
    c->chunks[0].key[0] = 'X';
    c->segments[0][0] = 'X';
    c->write_set[0].count = 9;
    ck_assert_uint_eq(m->overlay[0].checksum, 0x0123456789abcdefull);
    ck_assert_str_eq(m->chunks[0].key, "pagetables/c0.ptc");
    ck_assert_str_eq(m->segments[0], "segments/s1.seg");
    ck_assert_uint_eq(m->write_set[0].count, 1);
    dsq_manifest_free(c);
    /* clone of an empty manifest */
    struct dsq_manifest e;
    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(dsq_manifest_clone(&e, &c), DSQ_OK);
    ck_assert_ptr_null(c->overlay);
    ck_assert_ptr_null(c->created);
    dsq_manifest_free(c);
    dsq_manifest_free(m);
    dsq_manifest_free(NULL);
}
END_TEST

START_TEST(test_ranges_contain)
{
    uint64_t st = 12345;
    for (int round = 0; round < 200; round++) {
        struct dsq_range r[40];
        size_t n = (size_t)(round % 40);
        uint32_t next = 1;
        for (size_t i = 0; i < n; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            r[i].start = next + (uint32_t)((st >> 33) % 5);
            r[i].count = 1 + (uint32_t)((st >> 40) % 4);
            next = r[i].start + r[i].count + 1;
        }
        for (uint32_t p = 0; p < next + 3; p++) {
            int want = 0;
            for (size_t i = 0; i < n; i++)
                if (p >= r[i].start && p < r[i].start + r[i].count)
                    want = 1;
            ck_assert_int_eq(dsq_ranges_contain(r, n, p), want);
        }
    }
    struct dsq_range top = {0xfffffff0u, 16};
    ck_assert(dsq_ranges_contain(&top, 1, 0xffffffffu));
    ck_assert(!dsq_ranges_contain(&top, 1, 0xffffffefu));
    ck_assert(!dsq_ranges_contain(NULL, 0, 1));
}
END_TEST

/* ---- keys ---- */

START_TEST(test_manifest_key)
{
    char k[64];
    uint64_t v = 99;
    dsq_manifest_key(12, k);
    ck_assert_str_eq(k, "manifests/v00000000000000000012.json");
    ck_assert_int_eq(dsq_manifest_key_parse(k, &v), 0);
    ck_assert_uint_eq(v, 12);
    dsq_manifest_key(UINT64_MAX, k);
    ck_assert_str_eq(k, "manifests/v18446744073709551615.json");
    ck_assert_int_eq(dsq_manifest_key_parse(k, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    dsq_manifest_key(0, k);
    ck_assert_int_eq(dsq_manifest_key_parse(k, &v), 0);
    ck_assert_uint_eq(v, 0);
    static const char *bad[] = {
        "manifests/v0000000000000000012.json",   /* 19 digits */
        "manifests/v000000000000000000012.json", /* 21 digits */
        "manifests/v18446744073709551616.json",  /* overflow */
        "manifests/v99999999999999999999.json",
        "manifests/v0000000000000000001a.json",
        "manifests/v-0000000000000000001.json",
        "manifests/v+0000000000000000001.json",
        "manifests/v 0000000000000000001.json",
        "manifests/v00000000000000000012.jso",
        "manifests/v00000000000000000012.json~",
        "manifests/v00000000000000000012.JSON",
        "manifests/V00000000000000000012.json",
        "/manifests/v00000000000000000012.json",
        "db/manifests/v00000000000000000012.json",
        "manifests/00000000000000000012.json",
        "manifests/v00000000000000000012",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        v = 77;
        ck_assert_msg(dsq_manifest_key_parse(bad[i], &v) != 0, "%s", bad[i]);
        ck_assert_uint_eq(v, 77);
    }
    ck_assert_int_ne(dsq_manifest_key_parse(NULL, &v), 0);
}
END_TEST

/* ---- root.json ---- */

START_TEST(test_root)
{
    struct dsq_root r = {12, T_MS}, d;
    struct dsq_buf out;
    dsq_buf_init(&out, 4096);
    ck_assert_int_eq(dsq_root_encode(&r, &out, NULL), DSQ_OK);
    static const char want[] =
        "{\"format\":\"dsqlfs-root\",\"format_version\":1,\"version\":12,"
        "\"time\":\"2025-11-25T16:44:59.123Z\"}";
    ck_assert_uint_eq(out.len, strlen(want));
    ck_assert_mem_eq(out.data, want, out.len);
    ck_assert_int_eq(dsq_root_decode(out.data, out.len, "root.json", &d, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(d.version, 12);
    ck_assert_uint_eq(d.time_ms, T_MS);
    /* version 0 (a database with no commit yet) */
    r.version = 0;
    dsq_buf_reset(&out);
    ck_assert_int_eq(dsq_root_encode(&r, &out, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_root_decode(out.data, out.len, "r", &d, NULL), DSQ_OK);
    ck_assert_uint_eq(d.version, 0);
    /* encoder refuses */
    r.version = DSQ_JSON_INT_MAX + 1;
    ck_assert_int_eq(dsq_root_encode(&r, &out, NULL), DSQ_EINVAL);
    r.version = 1;
    r.time_ms = 253402300800000ull;
    ck_assert_int_eq(dsq_root_encode(&r, &out, NULL), DSQ_EINVAL);
    dsq_buf_cleanup(&out);

    static const struct {
        const char *text;
        dsq_rc rc;
    } cases[] = {
        {"{\"format\":\"dsqlfs-root\",\"format_version\":1,\"version\":3,"
         "\"time\":\"2025-11-25T16:44:59.123Z\",\"extra\":[1]}",
         DSQ_OK},
        {"{\"time\":\"2025-11-25T16:44:59.123Z\",\"version\":3,"
         "\"format_version\":1,\"format\":\"dsqlfs-root\"}",
         DSQ_OK},
        {"{\"format\":\"dsqlfs-root\",\"format_version\":2,\"version\":3,"
         "\"time\":\"2025-11-25T16:44:59.123Z\"}",
         DSQ_EUNSUPPORTED},
        {"{\"format\":\"dsqlfs-manifest\",\"format_version\":1,\"version\":3,"
         "\"time\":\"2025-11-25T16:44:59.123Z\"}",
         DSQ_ECORRUPT},
        {"{\"format\":\"dsqlfs-root\",\"format_version\":1,\"version\":-3,"
         "\"time\":\"2025-11-25T16:44:59.123Z\"}",
         DSQ_ECORRUPT},
        {"{\"format\":\"dsqlfs-root\",\"format_version\":1,\"version\":3}",
         DSQ_ECORRUPT},
        {"{\"format\":\"dsqlfs-root\",\"format_version\":1,"
         "\"time\":\"2025-11-25T16:44:59.123Z\"}",
         DSQ_ECORRUPT},
        {"{\"format\":\"dsqlfs-root\",\"format_version\":1,\"version\":3,"
         "\"time\":\"2025-11-25T16:44:59Z\"}",
         DSQ_ECORRUPT},
        {"{\"format\":\"dsqlfs-root\",\"format_version\":1,\"version\":3,"
         "\"time\":\"2025-11-25T16:44:59.123Z\"}x",
         DSQ_ECORRUPT},
        {"{\"format\":\"dsqlfs-root\",\"format_version\":1,\"version\":3,"
         "\"version\":4,\"time\":\"2025-11-25T16:44:59.123Z\"}",
         DSQ_ECORRUPT},
        {"[]", DSQ_ECORRUPT},
        {"", DSQ_ECORRUPT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        d.version = 99;
        dsq_rc rc = dsq_root_decode((const uint8_t *)cases[i].text,
                                    strlen(cases[i].text), "r", &d, NULL);
        ck_assert_msg(rc == cases[i].rc, "#%zu: %s", i, dsq_rc_name(rc));
        ck_assert_uint_eq(d.version, rc == DSQ_OK ? 3 : 99);
    }
    /* over the cap */
    size_t big = DSQ_ROOT_MAX_BYTES + 1;
    uint8_t *huge = calloc(1, big);
    ck_assert_int_eq(dsq_root_decode(huge, big, "r", &d, NULL), DSQ_ECORRUPT);
    free(huge);
}
END_TEST

/* ---- format 2: incarnation and inline pages ---- */

#define INC "0123456789abcdef0123456789abcdef"
#define KEY11 "manifests/v00000000000000000011.json"
#define KEY12 "manifests/v00000000000000000012.json"

/*
 * Version 12 (checkpoint 10) carrying pages 1 ("hello") and 7 ("abc")
 * inline, page 5 in version 11's inline text, page 9 in a segment.
 */
static struct dsq_manifest *sample2(void)
{
    struct dsq_manifest *m = calloc(1, sizeof(*m));
    m->format_version = 2;
    strcpy(m->incarnation, INC);
    m->version = 12;
    m->parent = 11;
    m->page_size = 4096;
    m->page_count = 10;
    strcpy(m->writer_id, WRITER);
    strcpy(m->txn_id, TXN);
    m->time_ms = T_MS;
    m->n_write = 2;
    m->write_set = calloc(2, sizeof(struct dsq_range));
    m->write_set[0] = (struct dsq_range){1, 1};
    m->write_set[1] = (struct dsq_range){7, 1};
    m->page1 = DSQ_PAGE1_COUNTERS;
    m->ckpt_version = 10;
    m->ckpt_page_limit = 10;
    m->chunk_pages = 4096;
    m->n_segments = 3;
    m->segments = calloc(3, sizeof(char *));
    m->segments[0] = xstrdup(KEY12);
    m->segments[1] = xstrdup(KEY11);
    m->segments[2] = xstrdup("segments/s1.seg");
    m->n_overlay = 4;
    m->overlay = calloc(4, sizeof(struct dsq_page_loc));
    uint64_t off;
    ck_assert_int_eq(
        dsq_manifest_inline_append(m, (const uint8_t *)"hello", 5, &off),
        DSQ_OK);
    ck_assert_uint_eq(off, 57);
    m->overlay[0] = (struct dsq_page_loc){1, 0, off, 5, 1, 0xaaull};
    m->overlay[1] = (struct dsq_page_loc){5, 1, 65, 10, 1, 0xbbull};
    ck_assert_int_eq(
        dsq_manifest_inline_append(m, (const uint8_t *)"abc", 3, &off), DSQ_OK);
    ck_assert_uint_eq(off, 65);
    m->overlay[2] = (struct dsq_page_loc){7, 0, off, 3, 1, 0xccull};
    m->overlay[3] = (struct dsq_page_loc){9, 2, 99, 4096, 0, 0xddull};
    return m;
}

static const char SAMPLE2_JSON[] =
    "{\"format\":\"dsqlfs-manifest\",\"format_version\":2,"
    "\"inline\":\"aGVsbG8=YWJj\",\"version\":12,\"parent\":11,"
    "\"incarnation\":\"" INC "\",\"page_size\":4096,\"page_count\":10,"
    "\"writer_id\":\"00112233445566778899aabbccddeeff\","
    "\"txn_id\":\"ffeeddccbbaa99887766554433221100\","
    "\"time\":\"2025-11-25T16:44:59.123Z\","
    "\"write_set\":[[1,1],[7,1]],\"freed_set\":[],\"page1\":\"counters\","
    "\"created\":[],\"checkpoint\":{\"version\":10,\"page_limit\":10,"
    "\"chunk_pages\":4096,\"chunks\":[]},\"overlay\":{\"segments\":[\"" KEY12
    "\",\"" KEY11 "\",\"segments/s1.seg\"],\"pages\":["
    "[1,0,57,5,1,\"00000000000000aa\"],[5,1,65,10,1,\"00000000000000bb\"],"
    "[7,0,65,3,1,\"00000000000000cc\"],[9,2,99,4096,0,\"00000000000000dd\"]]}}";

START_TEST(test_v2_exact_text_and_roundtrip)
{
    struct dsq_manifest *m = sample2();
    struct dsq_buf out;
    encode_ok(m, &out);
    ck_assert_uint_eq(out.len, strlen(SAMPLE2_JSON));
    ck_assert_mem_eq(out.data, SAMPLE2_JSON, out.len);
    ck_assert_mem_eq(out.data, DSQ_MANIFEST_PREFIX2,
                     DSQ_MANIFEST_INLINE_OFFSET);
    /* an inline page is where its entry says, in the object's bytes */
    ck_assert_mem_eq(out.data + 57, "aGVsbG8=", 8);
    ck_assert_mem_eq(out.data + 65, "YWJj", 4);
    struct dsq_manifest *d = NULL;
    struct dsq_err e;
    ck_assert_int_eq(dsq_manifest_decode(out.data, out.len, "m", &d, &e),
                     DSQ_OK);
    ck_assert(dsq_eq_manifest(m, d));
    ck_assert_uint_eq(d->format_version, 2);
    ck_assert_str_eq(d->incarnation, INC);
    struct dsq_manifest *c = NULL;
    ck_assert_int_eq(dsq_manifest_clone(d, &c), DSQ_OK);
    ck_assert(dsq_eq_manifest(c, d));
    ck_assert_ptr_ne(c->inline_text, d->inline_text);
    dsq_manifest_free(c);
    /* jansson's compact dump of what we wrote is what we wrote */
    json_error_t jerr;
    json_t *j = json_loadb((const char *)out.data, out.len, 0, &jerr);
    ck_assert_ptr_nonnull(j);
    char *dump = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(dump, SAMPLE2_JSON);
    free(dump);
    json_decref(j);
    dsq_manifest_free(d);
    dsq_buf_cleanup(&out);
    dsq_manifest_free(m);
}
END_TEST

/* Decode SAMPLE2_JSON with the first from replaced by to. */
static dsq_rc subst2(const char *from, const char *to, struct dsq_err *e)
{
    const char *at = strstr(SAMPLE2_JSON, from);
    ck_assert_msg(at != NULL, "%s not in the sample", from);
    size_t pre = (size_t)(at - SAMPLE2_JSON);
    char *t = malloc(sizeof(SAMPLE2_JSON) + strlen(to));
    memcpy(t, SAMPLE2_JSON, pre);
    strcpy(t + pre, to);
    strcat(t, at + strlen(from));
    dsq_rc rc = decode_str(t, e);
    free(t);
    return rc;
}

static void bad2(const char *from, const char *to)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_msg(subst2(from, to, &e) == DSQ_ECORRUPT, "%s -> %s accepted",
                  from, to);
}

START_TEST(test_v2_rejects)
{
    struct dsq_err e;
    ck_assert_int_eq(subst2("\"version\":12", "\"version\":12", &e), DSQ_OK);
    /* the prefix is fixed: another key order or whitespace is refused */
    bad2("{\"format\":\"dsqlfs-manifest\",\"format_version\":2,",
         "{\"format_version\":2,\"format\":\"dsqlfs-manifest\",");
    bad2("\"inline\":\"aGVs", "\"inline\": \"aGVs");
    /* the text must be verbatim (an escape moves every offset) */
    bad2("aGVsbG8=", "\\u0061GVsbG8=");
    /* base64: bad character, padding, unused bits, wrong length */
    bad2("aGVsbG8=", "aGVsbG8*");
    bad2("aGVsbG8=", "aGVsbG==");
    bad2("aGVsbG8=", "aGVsbG9=");
    bad2("YWJj", "YWJjZA==");
    bad2("YWJj", "YWI=");
    /* the inline pages tile the text in page order */
    bad2("[7,0,65,3,1", "[7,0,66,3,1");
    bad2("[1,0,57,5,1", "[1,0,58,5,1");
    bad2("[7,0,65,3,1", "[7,2,65,3,1");
    bad2("\"inline\":\"aGVsbG8=YWJj\"", "\"inline\":\"aGVsbG8=YWJjYWJj\"");
    /* another version's key only in (checkpoint, version] */
    bad2("\"" KEY11 "\",\"segments", "\"manifests/v00000000000000000010.json\","
                                     "\"segments");
    bad2("\"" KEY11 "\",\"segments", "\"manifests/v00000000000000000013.json\","
                                     "\"segments");
    bad2("\"" KEY11 "\",\"segments", "\"manifests/v11.json\",\"segments");
    /* incarnation */
    bad2("\"incarnation\":\"" INC "\",", "");
    bad2("\"incarnation\":\"0123", "\"incarnation\":\"A123");
    /* format 1 knows no manifest keys in its overlay */
    ck_assert_int_eq(subst("\"segments/s1.seg\",\"segments/s2.seg\"]",
                           "\"" KEY11 "\",\"segments/s2.seg\"]"),
                     DSQ_ECORRUPT);
}
END_TEST

START_TEST(test_v2_encode_rejects)
{
    for (int k = 0; k < 5; k++) {
        struct dsq_manifest *m = sample2();
        switch (k) {
        case 0:
            m->incarnation[0] = 0;
            break;
        case 1:
            m->overlay[2].offset++;
            break;
        case 2:
            m->inline_text[0] = '*';
            break;
        case 3:
            m->format_version = 1; /* with inline pages */
            break;
        case 4:
            free(m->segments[1]);
            m->segments[1] = xstrdup("manifests/v00000000000000000009.json");
            break;
        }
        struct dsq_buf out;
        struct dsq_err e;
        dsq_buf_init(&out, 1u << 20);
        ck_assert_msg(dsq_manifest_encode(m, &out, &e) == DSQ_EINVAL,
                      "case %d encoded", k);
        ck_assert_uint_eq(out.len, 0);
        dsq_buf_cleanup(&out);
        dsq_manifest_free(m);
    }
}
END_TEST

START_TEST(test_b64)
{
    /* RFC 4648 section 10 */
    static const char *v[][2] = {{"", ""},
                                 {"f", "Zg=="},
                                 {"fo", "Zm8="},
                                 {"foo", "Zm9v"},
                                 {"foob", "Zm9vYg=="},
                                 {"fooba", "Zm9vYmE="},
                                 {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
        struct dsq_manifest m;
        memset(&m, 0, sizeof(m));
        uint64_t off;
        size_t n = strlen(v[i][0]);
        ck_assert_int_eq(
            dsq_manifest_inline_append(&m, (const uint8_t *)v[i][0], n, &off),
            DSQ_OK);
        ck_assert_uint_eq(off, DSQ_MANIFEST_INLINE_OFFSET);
        ck_assert_uint_eq(dsq_b64_len(n), strlen(v[i][1]));
        ck_assert_str_eq(m.inline_text, v[i][1]);
        uint8_t back[8];
        ck_assert_int_eq(dsq_b64_decode(v[i][1], strlen(v[i][1]), back, n), 0);
        ck_assert_mem_eq(back, v[i][0], n);
        free(m.inline_text);
    }
    uint8_t out[8];
    ck_assert_int_eq(dsq_b64_decode("Zg==", 4, out, 2), -1);
    ck_assert_int_eq(dsq_b64_decode("Zh==", 4, out, 1), -1);
    ck_assert_int_eq(dsq_b64_decode("Zm9", 3, out, 2), -1);
    ck_assert_int_eq(dsq_b64_decode("Zm=v", 4, out, 3), -1);
    /* every byte value survives */
    uint8_t all[256], back[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    struct dsq_manifest m;
    memset(&m, 0, sizeof(m));
    uint64_t off;
    ck_assert_int_eq(dsq_manifest_inline_append(&m, all, 256, &off), DSQ_OK);
    ck_assert_int_eq(dsq_b64_decode(m.inline_text, m.inline_len, back, 256), 0);
    ck_assert_mem_eq(all, back, 256);
    free(m.inline_text);
}
END_TEST

static Suite *manifest_suite(void)
{
    Suite *s = suite_create("manifest");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_exact_text);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_empty_manifest);
    tcase_add_test(tc, test_jansson_equivalence);
    tcase_add_test(tc, test_encode_rejects);
    tcase_add_test(tc, test_reference_decodes);
    tcase_add_test(tc, test_missing_fields);
    tcase_add_test(tc, test_format_and_version);
    tcase_add_test(tc, test_scalar_fields);
    tcase_add_test(tc, test_ranges);
    tcase_add_test(tc, test_keys_fields);
    tcase_add_test(tc, test_checkpoint_fields);
    tcase_add_test(tc, test_overlay_fields);
    tcase_add_test(tc, test_unknown_keys_ignored);
    tcase_add_test(tc, test_bad_json);
    tcase_add_test(tc, test_truncations);
    tcase_add_test(tc, test_flips);
    tcase_add_test(tc, test_clone);
    tcase_add_test(tc, test_ranges_contain);
    tcase_add_test(tc, test_manifest_key);
    tcase_add_test(tc, test_root);
    tcase_add_test(tc, test_v2_exact_text_and_roundtrip);
    tcase_add_test(tc, test_v2_rejects);
    tcase_add_test(tc, test_v2_encode_rejects);
    tcase_add_test(tc, test_b64);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    dsq_log_set_level(DSQ_LOG_CRIT);
    SRunner *sr = srunner_create(manifest_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
