/*
 * test_spin.c - the session loop's choice between spinning and sleeping
 * (fuse/spin.c): each epoch's two trial windows decide the rest of it,
 * long waits are not measured, and the trials come back every epoch.
 */
#include "spin.h"

#include <check.h>
#include <stdlib.h>

/* One window of requests waited for as the choice says, each costing
   spin_cost or sleep_cost; returns the way they were waited for. */
static int window(struct dsq_spin *s, uint64_t spin_cost, uint64_t sleep_cost)
{
    int way = dsq_spin_way(s);
    for (int i = 0; i < DSQ_SPIN_WINDOW; i++) {
        ck_assert_int_eq(dsq_spin_way(s), way);
        dsq_spin_note(s, way ? spin_cost : sleep_cost, 1);
    }
    return way;
}

START_TEST(test_spin_trials_decide)
{
    struct dsq_spin s = {0};
    ck_assert_int_eq(window(&s, 20, 50), 1); /* trial: spin */
    ck_assert_int_eq(window(&s, 20, 50), 0); /* trial: sleep */
    ck_assert_uint_eq(s.avg[1], 21);
    ck_assert_uint_eq(s.avg[0], 51);
    for (int w = 2; w < DSQ_SPIN_EPOCH; w++)
        ck_assert_int_eq(window(&s, 20, 50), 1);
    /* the next epoch measures again: sleeping is faster now */
    ck_assert_int_eq(window(&s, 60, 15), 1);
    ck_assert_int_eq(window(&s, 60, 15), 0);
    for (int w = 2; w < DSQ_SPIN_EPOCH; w++)
        ck_assert_int_eq(window(&s, 60, 15), 0);
    ck_assert_int_eq(dsq_spin_way(&s), 1); /* a new epoch's trial */
}
END_TEST

START_TEST(test_spin_long_waits_not_measured)
{
    struct dsq_spin s = {0};
    /* the program's own pauses: whatever they cost, nothing moves */
    for (int i = 0; i < 10 * DSQ_SPIN_WINDOW; i++)
        dsq_spin_note(&s, 1000000, DSQ_SPIN_GAP_US);
    ck_assert_uint_eq(s.window, 0);
    ck_assert_uint_eq(s.n, 0);
    /* a mean cost below 1 us is still a measurement */
    window(&s, 0, 5);
    window(&s, 0, 5);
    ck_assert_uint_eq(s.avg[1], 1);
    ck_assert_int_eq(s.spin, 1);
    ck_assert_int_eq(dsq_spin_way(&s), 1);
}
END_TEST

/* dsq_spin_note says when a request ended the trials: the last one of
   the sleeping trial window, and no other */
START_TEST(test_spin_note_says_decided)
{
    struct dsq_spin s = {0};
    int decided = 0;
    for (int i = 0; i < DSQ_SPIN_EPOCH * DSQ_SPIN_WINDOW; i++) {
        int d = dsq_spin_note(&s, 10, 1);
        if (d) {
            ck_assert_int_eq(i, 2 * DSQ_SPIN_WINDOW - 1);
            decided++;
        }
    }
    ck_assert_int_eq(decided, 1);
}
END_TEST

START_TEST(test_spin_tie_sleeps)
{
    /* equal costs: sleeping, which costs no CPU */
    struct dsq_spin s = {0};
    window(&s, 30, 30);
    window(&s, 30, 30);
    ck_assert_int_eq(dsq_spin_way(&s), 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("spin");
    TCase *tc = tcase_create("spin");
    tcase_add_test(tc, test_spin_trials_decide);
    tcase_add_test(tc, test_spin_long_waits_not_measured);
    tcase_add_test(tc, test_spin_note_says_decided);
    tcase_add_test(tc, test_spin_tie_sleeps);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
