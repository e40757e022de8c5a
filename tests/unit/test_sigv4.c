/*
 * test_sigv4.c - SigV4 against AWS's published vectors.
 *
 * The generic cases are from the aws-sig-v4-test-suite (credentials
 * AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1, service "service"); the S3
 * cases are the worked examples of the S3 "Signature Calculations for the
 * Authorization Header" page (examplebucket, 2013-05-24, with
 * x-amz-content-sha256).  The clock is frozen through dsq_env.now_ms.
 */
#include "env.h"
#include "sigv4.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUITE_AK "AKIDEXAMPLE"
#define SUITE_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_CRED "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static uint64_t frozen_ms;
static uint64_t frozen_now(void)
{
    return frozen_ms;
}

static void freeze(uint64_t ms)
{
    frozen_ms = ms;
    dsq_env.now_ms = frozen_now;
}

static void teardown(void)
{
    dsq_env_reset();
}

/* Sign with the suite's scope at the frozen clock; check the pieces. */
static void check_sign(const struct dsq_sigv4_req *r, const char *region,
                       const char *service, const char *ak, const char *sk,
                       const char *want_creq, const char *want_sts,
                       const char *want_authz)
{
    char date[17];
    dsq_sigv4_amz_date(dsq_now_ms(), date);
    struct dsq_sigv4_scope sc = {date, region, service};
    struct dsq_buf creq, sts, authz;
    dsq_buf_init(&creq, 1 << 16);
    dsq_buf_init(&sts, 1 << 16);
    dsq_buf_init(&authz, 1 << 16);

    ck_assert_int_eq(dsq_sigv4_canonical_request(r, &creq, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_buf_terminate(&creq), DSQ_OK);
    if (want_creq)
        ck_assert_str_eq((char *)creq.data, want_creq);
    ck_assert_int_eq(dsq_sigv4_string_to_sign(&sc, (char *)creq.data,
                                              creq.len, &sts),
                     DSQ_OK);
    ck_assert_int_eq(dsq_buf_terminate(&sts), DSQ_OK);
    if (want_sts)
        ck_assert_str_eq((char *)sts.data, want_sts);
    char sig[65];
    ck_assert_int_eq(dsq_sigv4_sign(r, &sc, ak, sk, sig, &authz), DSQ_OK);
    ck_assert_int_eq(dsq_buf_terminate(&authz), DSQ_OK);
    ck_assert_str_eq((char *)authz.data, want_authz);
    /* never the secret in any output */
    ck_assert_ptr_null(strstr((char *)authz.data, sk));
    ck_assert_ptr_null(strstr((char *)creq.data, sk));
    ck_assert_ptr_null(strstr((char *)sts.data, sk));
    dsq_buf_cleanup(&creq);
    dsq_buf_cleanup(&sts);
    dsq_buf_cleanup(&authz);
}

static void suite_case(const char *method, const char *path,
                       const struct dsq_sigv4_pair *q, size_t nq,
                       const struct dsq_sigv4_pair *extra, size_t nextra,
                       const char *body, const char *want_creq,
                       const char *want_sts, const char *want_tail)
{
    struct dsq_sigv4_pair h[16];
    size_t n = 0;
    h[n++] = (struct dsq_sigv4_pair){"Host", "example.amazonaws.com"};
    h[n++] = (struct dsq_sigv4_pair){"X-Amz-Date", "20150830T123600Z"};
    for (size_t i = 0; i < nextra; i++)
        h[n++] = extra[i];
    char ph[65];
    dsq_sha256_hex(body, strlen(body), ph);
    struct dsq_sigv4_req r = {method, path, q, nq, h, n, ph};
    char want[512];
    snprintf(want, sizeof(want), "%s%s", SUITE_CRED, want_tail);
    freeze(1440938160000ull); /* 2015-08-30T12:36:00Z */
    check_sign(&r, "us-east-1", "service", SUITE_AK, SUITE_SK, want_creq,
               want_sts, want);
}

START_TEST(test_get_vanilla)
{
    suite_case("GET", "/", NULL, 0, NULL, 0, "",
               "GET\n/\n\nhost:example.amazonaws.com\n"
               "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" DSQ_SHA256_EMPTY,
               "AWS4-HMAC-SHA256\n20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
               "SignedHeaders=host;x-amz-date, Signature="
               "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}
END_TEST

START_TEST(test_get_vanilla_empty_path)
{
    /* "" is "/" */
    suite_case("GET", "", NULL, 0, NULL, 0, "", NULL, NULL,
               "SignedHeaders=host;x-amz-date, Signature="
               "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}
END_TEST

START_TEST(test_get_vanilla_query_order_key_case)
{
    struct dsq_sigv4_pair q[] = {{"Param2", "value2"}, {"Param1", "value1"}};
    suite_case("GET", "/", q, 2, NULL, 0, "", NULL, NULL,
               "SignedHeaders=host;x-amz-date, Signature="
               "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}
END_TEST

START_TEST(test_get_vanilla_query_order_key)
{
    struct dsq_sigv4_pair q[] = {{"Param1", "value2"}, {"Param1", "Value1"}};
    suite_case("GET", "/", q, 2, NULL, 0, "",
               "GET\n/\nParam1=Value1&Param1=value2\n"
               "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
               "host;x-amz-date\n" DSQ_SHA256_EMPTY,
               "AWS4-HMAC-SHA256\n20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
               "SignedHeaders=host;x-amz-date, Signature="
               "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1");
}
END_TEST

START_TEST(test_get_vanilla_query_order_value)
{
    struct dsq_sigv4_pair q[] = {{"Param1", "value2"}, {"Param1", "value1"}};
    suite_case("GET", "/", q, 2, NULL, 0, "", NULL, NULL,
               "SignedHeaders=host;x-amz-date, Signature="
               "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694");
}
END_TEST

START_TEST(test_get_vanilla_utf8_query)
{
    struct dsq_sigv4_pair q[] = {{"\xe1\x88\xb4", "bar"}};
    suite_case("GET", "/", q, 1, NULL, 0, "", NULL, NULL,
               "SignedHeaders=host;x-amz-date, Signature="
               "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}
END_TEST

START_TEST(test_get_unreserved)
{
    suite_case("GET",
               "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
               NULL, 0, NULL, 0, "", NULL, NULL,
               "SignedHeaders=host;x-amz-date, Signature="
               "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}
END_TEST

START_TEST(test_get_utf8)
{
    suite_case("GET", "/\xe1\x88\xb4", NULL, 0, NULL, 0, "", NULL, NULL,
               "SignedHeaders=host;x-amz-date, Signature="
               "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}
END_TEST

START_TEST(test_get_space)
{
    suite_case("GET", "/example space/", NULL, 0, NULL, 0, "", NULL, NULL,
               "SignedHeaders=host;x-amz-date, Signature="
               "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741");
}
END_TEST

START_TEST(test_get_header_value_trim)
{
    struct dsq_sigv4_pair x[] = {{"My-Header1", " value1"},
                                 {"My-Header2", "\"a   b   c\""}};
    suite_case("GET", "/", NULL, 0, x, 2, "", NULL, NULL,
               "SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature="
               "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}
END_TEST

START_TEST(test_get_header_key_duplicate)
{
    struct dsq_sigv4_pair x[] = {{"My-Header1", "value2"},
                                 {"My-Header1", "value2"},
                                 {"My-Header1", "value1"}};
    suite_case("GET", "/", NULL, 0, x, 3, "", NULL, NULL,
               "SignedHeaders=host;my-header1;x-amz-date, Signature="
               "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}
END_TEST

START_TEST(test_get_header_value_order)
{
    struct dsq_sigv4_pair x[] = {{"My-Header1", "value4"},
                                 {"My-Header1", "value1"},
                                 {"My-Header1", "value3"},
                                 {"My-Header1", "value2"}};
    suite_case("GET", "/", NULL, 0, x, 4, "", NULL, NULL,
               "SignedHeaders=host;my-header1;x-amz-date, Signature="
               "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01");
}
END_TEST

START_TEST(test_post_vanilla)
{
    suite_case("POST", "/", NULL, 0, NULL, 0, "", NULL, NULL,
               "SignedHeaders=host;x-amz-date, Signature="
               "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}
END_TEST

START_TEST(test_post_x_www_form_urlencoded)
{
    struct dsq_sigv4_pair x[] = {
        {"Content-Type", "application/x-www-form-urlencoded"}};
    suite_case("POST", "/", NULL, 0, x, 1, "Param1=value1",
               "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
               "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
               "content-type;host;x-amz-date\n"
               "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
               "AWS4-HMAC-SHA256\n20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
               "SignedHeaders=content-type;host;x-amz-date, Signature="
               "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}
END_TEST

START_TEST(test_post_x_www_form_urlencoded_parameters)
{
    struct dsq_sigv4_pair x[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}};
    suite_case("POST", "/", NULL, 0, x, 1, "Param1=value1", NULL, NULL,
               "SignedHeaders=content-type;host;x-amz-date, Signature="
               "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe");
}
END_TEST

START_TEST(test_post_sts_header_before)
{
    struct dsq_sigv4_pair x[] = {
        {"X-Amz-Security-Token",
         "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="}};
    suite_case("POST", "/", NULL, 0, x, 1, "", NULL, NULL,
               "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="
               "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}
END_TEST

/* ---- S3 examples (x-amz-content-sha256 signed) ---- */

static void s3_case(const char *method, const char *path,
                    const struct dsq_sigv4_pair *q, size_t nq,
                    const struct dsq_sigv4_pair *extra, size_t nextra,
                    const char *body, const char *want_creq,
                    const char *want_sts, const char *want_authz)
{
    struct dsq_sigv4_pair h[16];
    size_t n = 0;
    char ph[65];
    dsq_sha256_hex(body, strlen(body), ph);
    h[n++] = (struct dsq_sigv4_pair){"Host", "examplebucket.s3.amazonaws.com"};
    h[n++] = (struct dsq_sigv4_pair){"x-amz-date", "20130524T000000Z"};
    h[n++] = (struct dsq_sigv4_pair){"x-amz-content-sha256", ph};
    for (size_t i = 0; i < nextra; i++)
        h[n++] = extra[i];
    struct dsq_sigv4_req r = {method, path, q, nq, h, n, ph};
    freeze(1369353600000ull); /* 2013-05-24T00:00:00Z */
    check_sign(&r, "us-east-1", "s3", S3_AK, S3_SK, want_creq, want_sts,
               want_authz);
}

START_TEST(test_s3_get_object)
{
    struct dsq_sigv4_pair x[] = {{"Range", "bytes=0-9"}};
    s3_case("GET", "/test.txt", NULL, 0, x, 1, "",
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
            "range:bytes=0-9\nx-amz-content-sha256:" DSQ_SHA256_EMPTY "\n"
            "x-amz-date:20130524T000000Z\n\n"
            "host;range;x-amz-content-sha256;x-amz-date\n" DSQ_SHA256_EMPTY,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
            "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
            "x-amz-content-sha256;x-amz-date, Signature="
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}
END_TEST

START_TEST(test_s3_put_object)
{
    struct dsq_sigv4_pair x[] = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
    s3_case("PUT", "/test$file.text", NULL, 0, x, 2, "Welcome to Amazon S3.",
            "PUT\n/test%24file.text\n\n"
            "date:Fri, 24 May 2013 00:00:00 GMT\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:"
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
            "x-amz-date:20130524T000000Z\n"
            "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
            "AWS4-HMAC-SHA256\n20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
            "us-east-1/s3/aws4_request, SignedHeaders=date;host;"
            "x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature="
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}
END_TEST

START_TEST(test_s3_get_lifecycle)
{
    struct dsq_sigv4_pair q[] = {{"lifecycle", ""}};
    s3_case("GET", "/", q, 1, NULL, 0, "", NULL, NULL,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
            "us-east-1/s3/aws4_request, SignedHeaders=host;"
            "x-amz-content-sha256;x-amz-date, Signature="
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}
END_TEST

START_TEST(test_s3_list_objects)
{
    struct dsq_sigv4_pair q[] = {{"prefix", "J"}, {"max-keys", "2"}};
    s3_case("GET", "/", q, 2, NULL, 0, "", NULL, NULL,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
            "us-east-1/s3/aws4_request, SignedHeaders=host;"
            "x-amz-content-sha256;x-amz-date, Signature="
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}
END_TEST

START_TEST(test_signing_key)
{
    /* the "derive a signing key" example of the SigV4 documentation */
    uint8_t k[32];
    char hex[65];
    dsq_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                          "20120215", "us-east-1", "iam", k);
    static const char h[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = h[k[i] >> 4];
        hex[2 * i + 1] = h[k[i] & 15];
    }
    hex[64] = 0;
    ck_assert_str_eq(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}
END_TEST

static void enc(const char *in, int slash, const char *want)
{
    struct dsq_buf b;
    dsq_buf_init(&b, 4096);
    ck_assert_int_eq(dsq_sigv4_encode(in, slash, &b), DSQ_OK);
    ck_assert_int_eq(dsq_buf_terminate(&b), DSQ_OK);
    ck_assert_str_eq((char *)b.data, want);
    dsq_buf_cleanup(&b);
}

START_TEST(test_encode_keys)
{
    enc("a b", 0, "a%20b");
    enc("a+b", 0, "a%2Bb");
    enc("100%", 0, "100%25");
    enc("db/v/0001", 0, "db/v/0001");
    enc("db/v/0001", 1, "db%2Fv%2F0001");
    enc("caf\xc3\xa9 \xe2\x98\x83", 0, "caf%C3%A9%20%E2%98%83");
    enc("A-z_0.9~", 1, "A-z_0.9~");
    enc("=&?#*!'()$,;:@", 1, "%3D%26%3F%23%2A%21%27%28%29%24%2C%3B%3A%40");
    enc("", 1, "");

    struct dsq_sigv4_pair q[] = {{"prefix", "a b+c/"},
                                 {"list-type", "2"},
                                 {"continuation-token", "x=y/z+"},
                                 {"delimiter", NULL}};
    struct dsq_buf b;
    dsq_buf_init(&b, 4096);
    ck_assert_int_eq(dsq_sigv4_query(q, 4, &b), DSQ_OK);
    ck_assert_int_eq(dsq_buf_terminate(&b), DSQ_OK);
    ck_assert_str_eq((char *)b.data, "continuation-token=x%3Dy%2Fz%2B&"
                                     "delimiter=&list-type=2&"
                                     "prefix=a%20b%2Bc%2F");
    dsq_buf_cleanup(&b);
}
END_TEST

START_TEST(test_amz_date)
{
    char d[17];
    dsq_sigv4_amz_date(0, d);
    ck_assert_str_eq(d, "19700101T000000Z");
    dsq_sigv4_amz_date(1440938160999ull, d);
    ck_assert_str_eq(d, "20150830T123600Z");
}
END_TEST

START_TEST(test_caps)
{
    /* a bounded output is honoured */
    struct dsq_buf b;
    dsq_buf_init(&b, 4);
    ck_assert_int_eq(dsq_sigv4_encode("abcdef", 0, &b), DSQ_ERANGE);
    dsq_buf_cleanup(&b);
    struct dsq_sigv4_req r = {"GET", "/", NULL, 0, NULL, 0, NULL};
    dsq_buf_init(&b, 4096);
    ck_assert_int_eq(dsq_sigv4_canonical_request(&r, &b, NULL), DSQ_EINVAL);
    dsq_buf_cleanup(&b);
}
END_TEST

static Suite *sigv4_suite(void)
{
    Suite *s = suite_create("sigv4");
    TCase *tc = tcase_create("vectors");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_get_vanilla);
    tcase_add_test(tc, test_get_vanilla_empty_path);
    tcase_add_test(tc, test_get_vanilla_query_order_key_case);
    tcase_add_test(tc, test_get_vanilla_query_order_key);
    tcase_add_test(tc, test_get_vanilla_query_order_value);
    tcase_add_test(tc, test_get_vanilla_utf8_query);
    tcase_add_test(tc, test_get_unreserved);
    tcase_add_test(tc, test_get_utf8);
    tcase_add_test(tc, test_get_space);
    tcase_add_test(tc, test_get_header_value_trim);
    tcase_add_test(tc, test_get_header_key_duplicate);
    tcase_add_test(tc, test_get_header_value_order);
    tcase_add_test(tc, test_post_vanilla);
    tcase_add_test(tc, test_post_x_www_form_urlencoded);
    tcase_add_test(tc, test_post_x_www_form_urlencoded_parameters);
    tcase_add_test(tc, test_post_sts_header_before);
    tcase_add_test(tc, test_s3_get_object);
    tcase_add_test(tc, test_s3_put_object);
    tcase_add_test(tc, test_s3_get_lifecycle);
    tcase_add_test(tc, test_s3_list_objects);
    tcase_add_test(tc, test_signing_key);
    tcase_add_test(tc, test_encode_keys);
    tcase_add_test(tc, test_amz_date);
    tcase_add_test(tc, test_caps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sigv4_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
