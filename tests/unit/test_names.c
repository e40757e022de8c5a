/*
 * test_names.c - file names on the mount <-> store prefixes (fuse/names.c,
 * docs/mount.md "Names"): the documented examples, refusals with their
 * errno, side-file names, and the two properties the mapping promises on
 * many generated names: two names never share a prefix, and a name read
 * back from its prefix is the same name.
 */
#include "names.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *comp_of(const char *name, int at_root)
{
    static char out[1100];
    const char *why = NULL;
    int r = dsq_name_db_component(name, at_root, out, sizeof(out), &why);
    ck_assert_msg(r == 0, "%s refused: %s", name, why ? why : "?");
    ck_assert_ptr_nonnull(out);
    return out;
}

START_TEST(test_examples)
{
    ck_assert_str_eq(comp_of("orders.db", 1), "orders");
    ck_assert_str_eq(comp_of("db.sqlite3", 1), "db.sqlite3!");
    ck_assert_str_eq(comp_of("noext", 1), "noext!");
    ck_assert_str_eq(comp_of("Data File.DB", 1), "Data File.DB!");
    ck_assert_str_eq(comp_of("a!.db", 1), "a!.db!");
    ck_assert_str_eq(comp_of("wow!", 1), "wow!!");
    ck_assert_str_eq(comp_of(".db", 1), ".db!");
    ck_assert_str_eq(comp_of("x.db.db", 1), "x.db");
    ck_assert_str_eq(comp_of(".hidden.db", 1), ".hidden");
    ck_assert_str_eq(comp_of(".dsqlfs", 0), ".dsqlfs!"); /* not at the root */

    char name[300];
    ck_assert_int_eq(
        dsq_name_db_from_component("orders", 1, name, sizeof(name)), 0);
    ck_assert_str_eq(name, "orders.db");
    ck_assert_int_eq(
        dsq_name_db_from_component("db.sqlite3!", 1, name, sizeof(name)), 0);
    ck_assert_str_eq(name, "db.sqlite3");
    ck_assert_int_eq(
        dsq_name_db_from_component("a!.db!", 1, name, sizeof(name)), 0);
    ck_assert_str_eq(name, "a!.db");
    /* never shown: reserved, or a name that reads as a side file */
    ck_assert_int_eq(
        dsq_name_db_from_component(".dsqtmp.1", 1, name, sizeof(name)), -1);
    ck_assert_int_eq(
        dsq_name_db_from_component("_dsqlfs", 1, name, sizeof(name)), -1);
    ck_assert_int_eq(
        dsq_name_db_from_component("x-journal!", 1, name, sizeof(name)), -1);
    ck_assert_int_eq(dsq_name_db_from_component("!", 1, name, sizeof(name)),
                     -1);
}
END_TEST

static int refused(const char *name, int at_root)
{
    char out[1100];
    const char *why = NULL;
    int r = dsq_name_db_component(name, at_root, out, sizeof(out), &why);
    if (r)
        ck_assert_msg(why && why[0], "no reason for %s", name);
    return r;
}

START_TEST(test_refusals)
{
    ck_assert_int_eq(refused("bad\001.db", 1), -EINVAL);
    ck_assert_int_eq(refused("del\177", 1), -EINVAL);
    ck_assert_int_eq(refused("\xff\xfe.db", 1), -EINVAL); /* not UTF-8 */
    ck_assert_int_eq(refused("\xc0\xaf.db", 1), -EINVAL); /* overlong */
    ck_assert_int_eq(refused("shop@v12.db", 1), -EINVAL);
    ck_assert_int_eq(refused("shop@2026-12-01T10:00:00Z.db", 1), -EINVAL);
    ck_assert_int_eq(refused("mail@example.db", 1), 0); /* not view syntax */
    ck_assert_int_eq(refused(".dsqtmp.x", 1), -EPERM);
    ck_assert_int_eq(refused(".dsqtmp.db", 1), -EPERM);
    ck_assert_int_eq(refused("_dsqlfs.db", 1), -EPERM);
    ck_assert_int_eq(refused(".dsqlfs-probe", 1), -EPERM);
    ck_assert_int_eq(refused(".dsqlfs", 1), -EPERM);
    ck_assert_int_eq(refused(".", 1), -EINVAL);
    ck_assert_int_eq(refused("..", 1), -EINVAL);
    ck_assert_int_eq(refused("x-journal", 1), -EINVAL);
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    longname[DSQ_NAME_MAX] = 0;
    ck_assert_int_eq(refused(longname, 1), 0);
    longname[DSQ_NAME_MAX] = 'a';
    longname[DSQ_NAME_MAX + 1] = 0;
    ck_assert_int_eq(refused(longname, 1), -ENAMETOOLONG);

    const char *why;
    ck_assert_int_eq(dsq_name_dir_check("team", 1, &why), 0);
    ck_assert_int_eq(dsq_name_dir_check("team!", 1, &why), -EINVAL);
    ck_assert_int_eq(dsq_name_dir_check(".dsqlfs", 1, &why), -EPERM);
    ck_assert_int_eq(dsq_name_dir_shown(".dsqtmp.3", 1), 0);
}
END_TEST

START_TEST(test_side_names)
{
    size_t bl = 0;
    ck_assert_int_eq(dsq_name_side("db.sqlite3-journal", &bl),
                     DSQ_SIDE_JOURNAL);
    ck_assert_uint_eq(bl, strlen("db.sqlite3"));
    ck_assert_int_eq(dsq_name_side("x.db-wal", &bl), DSQ_SIDE_WAL);
    ck_assert_uint_eq(bl, 4);
    ck_assert_int_eq(dsq_name_side("noext-shm", &bl), DSQ_SIDE_SHM);
    ck_assert_uint_eq(bl, 5);
    ck_assert_int_eq(dsq_name_side("test.db-mj0A1B2C9F3", &bl), DSQ_SIDE_SUPER);
    ck_assert_uint_eq(bl, 7);
    ck_assert_int_eq(dsq_name_side("-journal", &bl), DSQ_SIDE_NONE);
    ck_assert_int_eq(dsq_name_side("x-mj", &bl), DSQ_SIDE_NONE);
    ck_assert_int_eq(dsq_name_side("x-mjxyz", &bl), DSQ_SIDE_NONE);
    ck_assert_int_eq(dsq_name_side("journal.db", &bl), DSQ_SIDE_NONE);
}
END_TEST

/* Names from a small alphabet rich in the characters that matter. */
static void gen_name(unsigned seed, char *out)
{
    static const char *parts[] = {"a", "b", ".", "!",        ".db", "db",
                                  "@", "-", " ", "x.sqlite", "é"};
    size_t n = 1 + seed % 5, k = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        const char *p =
            parts[(seed >> 16) % (sizeof(parts) / sizeof(parts[0]))];
        k += (size_t)snprintf(out + k, 64 - k, "%s", p);
    }
}

struct pair {
    char name[80];
    char comp[90];
};

static int by_comp(const void *a, const void *b)
{
    return strcmp(((const struct pair *)a)->comp,
                  ((const struct pair *)b)->comp);
}

START_TEST(test_view_names)
{
    struct dsq_view_name vn;
    ck_assert(dsq_name_view("shop@v12.db", &vn));
    ck_assert_str_eq(vn.base, "shop.db");
    ck_assert(!vn.by_time);
    ck_assert_uint_eq(vn.version, 12);
    ck_assert(dsq_name_view("shop@v12", &vn));
    ck_assert_str_eq(vn.base, "shop");
    ck_assert(dsq_name_view("db@v3.sqlite3", &vn));
    ck_assert_str_eq(vn.base, "db.sqlite3");
    ck_assert(dsq_name_view("a@b@v7.db", &vn));
    ck_assert_str_eq(vn.base, "a@b.db");
    ck_assert_uint_eq(vn.version, 7);
    ck_assert(dsq_name_view("shop@2026-12-01T10:00:00Z.db", &vn));
    ck_assert_str_eq(vn.base, "shop.db");
    ck_assert(vn.by_time);
    ck_assert_uint_eq(vn.at_ms, 1796119200000ull);
    ck_assert(dsq_name_view("shop@2026-12-01T11:00+01:00.db", &vn));
    ck_assert_uint_eq(vn.at_ms, 1796119200000ull);
    ck_assert(dsq_name_view("shop@2026-12-01T10:00:00.250Z", &vn));
    ck_assert_str_eq(vn.base, "shop");
    ck_assert_uint_eq(vn.at_ms, 1796119200250ull);
    ck_assert(dsq_name_view("shop@2026-12-01T09:00:00.5-01:00.db", &vn));
    ck_assert_uint_eq(vn.at_ms, 1796119200500ull);
    /* not views */
    const char *no[] = {"shop.db",
                        "@v12.db", /* no NAME */
                        "shop@v0.db",
                        "shop@v.db",
                        "shop@v12x",
                        "shop@v12.",
                        "shop@v99999999999999999999.db",
                        "shop@2026-12-01T10:00:00.db", /* no zone */
                        "shop@2026-02-30T10:00Z.db",
                        "shop@2026-12-01T10:00Zdb",
                        "user@example.db"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!dsq_name_view(no[i], &vn), "%s", no[i]);
    /* their side files */
    ck_assert(dsq_name_view_side("shop@v12.db-journal"));
    ck_assert(dsq_name_view_side("shop@v12.db-wal"));
    ck_assert(dsq_name_view_side("shop@2026-12-01T10:00Z-shm"));
    ck_assert(!dsq_name_view_side("shop.db-journal"));
    ck_assert(!dsq_name_view_side("shop@v12.db"));
    /* a view name is never a database's own name */
    const char *why = NULL;
    char out[300];
    ck_assert_int_eq(
        dsq_name_db_component("shop@v12.db", 1, out, sizeof(out), &why),
        -EINVAL);
}
END_TEST

START_TEST(test_bijection)
{
    enum { N = 20000 };
    struct pair *v = calloc(N, sizeof(*v));
    ck_assert_ptr_nonnull(v);
    size_t n = 0;
    for (unsigned i = 0; i < N; i++) {
        char back[1100];
        const char *why;
        gen_name(i * 2654435761u, v[n].name);
        if (dsq_name_db_component(v[n].name, 1, v[n].comp, sizeof(v[n].comp),
                                  &why) != 0)
            continue;
        /* read back: the same name */
        ck_assert_int_eq(
            dsq_name_db_from_component(v[n].comp, 1, back, sizeof(back)), 0);
        ck_assert_str_eq(back, v[n].name);
        n++;
    }
    ck_assert_uint_gt(n, 1000);
    /* two different names never share a prefix */
    qsort(v, n, sizeof(*v), by_comp);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(v[i].comp, v[i - 1].comp))
            ck_assert_msg(!strcmp(v[i].name, v[i - 1].name), "%s and %s -> %s",
                          v[i - 1].name, v[i].name, v[i].comp);
    free(v);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, test_examples);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_side_names);
    tcase_add_test(tc, test_bijection);
    tcase_add_test(tc, test_view_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
