/*
 * test_selfio.c - the daemon's own I/O through a child process
 * (fuse/selfio.c), on a regular file: whole reads and writes across the
 * child's chunk size, a short read at the end of the file, a failed open
 * naming its errno, the child keeping no other descriptor of the parent
 * (above all not /dev/fuse: a pipe stands in for it), and a dead child
 * failing every call cleanly.
 */
#include "selfio.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tmp;
static char path[4096];

static void setup(void)
{
    tmp = dsq_test_tmpdir("selfio");
    snprintf(path, sizeof(path), "%s/f", tmp);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void teardown(void)
{
    dsq_test_rmrf(tmp);
    free(tmp);
}

START_TEST(test_round_trip)
{
    struct dsq_selfio *s = dsq_selfio_open(path);
    ck_assert_ptr_nonnull(s);
    size_t n = 300000; /* several of the child's chunks */
    unsigned char *a = malloc(n), *b = malloc(n + 10);
    for (size_t i = 0; i < n; i++)
        a[i] = (unsigned char)(i * 7 + 3);
    ck_assert_int_eq(dsq_selfio_pwrite(s, a, n, 100), (ssize_t)n);
    memset(b, 0, n + 10);
    ck_assert_int_eq(dsq_selfio_pread(s, b, n, 100), (ssize_t)n);
    ck_assert_int_eq(memcmp(a, b, n), 0);
    /* the end of the file: what there is */
    ck_assert_int_eq(dsq_selfio_pread(s, b, n + 10, 100), (ssize_t)n);
    ck_assert_int_eq(dsq_selfio_pread(s, b, 10, 100 + n + 50), 0);
    dsq_selfio_close(s);
    /* the bytes are in the file itself */
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 100, SEEK_SET);
    ck_assert_uint_eq(fread(b, 1, n, f), n);
    fclose(f);
    ck_assert_int_eq(memcmp(a, b, n), 0);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_open_fails)
{
    char missing[4200];
    snprintf(missing, sizeof(missing), "%s/no/such", tmp);
    errno = 0;
    ck_assert_ptr_null(dsq_selfio_open(missing));
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_child_keeps_no_descriptor)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct dsq_selfio *s = dsq_selfio_open(path);
    ck_assert_ptr_nonnull(s);
    close(p[1]);
    char c;
    /* end of file only if the child closed its copy of the write end */
    ck_assert_int_eq(read(p[0], &c, 1), 0);
    close(p[0]);
    dsq_selfio_close(s);
}
END_TEST

START_TEST(test_dead_child)
{
    struct dsq_selfio *s = dsq_selfio_open(path);
    ck_assert_ptr_nonnull(s);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(dsq_selfio_pwrite(s, "x", 1, 0), 1);
    ck_assert_int_eq(dsq_selfio_alive(s), 1);
    ck_assert_int_eq(kill(dsq_selfio_pid(s), SIGKILL), 0);
    char b[4];
    ck_assert_int_lt(dsq_selfio_pread(s, b, 1, 0), 0);
    ck_assert_int_lt(dsq_selfio_pwrite(s, "y", 1, 0), 0);
    ck_assert_int_eq(dsq_selfio_alive(s), 0);
    dsq_selfio_close(s);
    close(p[0]);
    close(p[1]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("selfio");
    TCase *tc = tcase_create("selfio");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_open_fails);
    tcase_add_test(tc, test_child_keeps_no_descriptor);
    tcase_add_test(tc, test_dead_child);
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
