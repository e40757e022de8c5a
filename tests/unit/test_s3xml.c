/*
 * test_s3xml.c - parsing ListObjectsV2, Error and STS documents, and
 * refusing hostile or malformed ones.
 */
#include "s3xml.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void page_free(struct dsq_list_page *p)
{
    for (size_t i = 0; i < p->n_entries; i++)
        free(p->entries[i].key);
    free(p->entries);
    for (size_t i = 0; i < p->n_prefixes; i++)
        free(p->common_prefixes[i]);
    free(p->common_prefixes);
    free(p->next_token);
    memset(p, 0, sizeof(*p));
}

static const char list_doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bucket</Name><Prefix>db/</Prefix><KeyCount>3</KeyCount>"
    "<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>db/a</Key>"
    "<LastModified>2009-10-12T17:50:30.000Z</LastModified>"
    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>"
    "<Size>434234</Size><StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>db/b &amp; c</Key>"
    "<LastModified>2024-01-02T03:04:05Z</LastModified>"
    "<ETag>\"abc-2\"</ETag><Size>0</Size></Contents>"
    "<CommonPrefixes><Prefix>db/v/</Prefix></CommonPrefixes>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    "</NextContinuationToken></ListBucketResult>";

START_TEST(test_list)
{
    struct dsq_list_page p;
    struct dsq_err e;
    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(dsq_s3xml_parse_list(list_doc, strlen(list_doc), &p, &e),
                     DSQ_OK);
    ck_assert_uint_eq(p.n_entries, 2);
    ck_assert_str_eq(p.entries[0].key, "db/a");
    ck_assert_uint_eq(p.entries[0].info.size, 434234);
    ck_assert_str_eq(p.entries[0].info.etag,
                     "fba9dede5f27731c9771645a39863328");
    ck_assert_uint_eq(p.entries[0].info.mtime_ms, 1255369830000ull);
    ck_assert_str_eq(p.entries[1].key, "db/b & c");
    ck_assert_uint_eq(p.entries[1].info.size, 0);
    ck_assert_str_eq(p.entries[1].info.etag, "abc-2");
    ck_assert_uint_eq(p.entries[1].info.mtime_ms, 1704164645000ull);
    ck_assert_uint_eq(p.n_prefixes, 1);
    ck_assert_str_eq(p.common_prefixes[0], "db/v/");
    ck_assert_str_eq(p.next_token,
                     "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    page_free(&p);
}
END_TEST

START_TEST(test_list_last_page_and_empty)
{
    static const char doc[] =
        "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount>"
        "<IsTruncated>false</IsTruncated></ListBucketResult>";
    struct dsq_list_page p;
    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(dsq_s3xml_parse_list(doc, strlen(doc), &p, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(p.n_entries, 0);
    ck_assert_uint_eq(p.n_prefixes, 0);
    ck_assert_ptr_null(p.next_token);
    page_free(&p);
}
END_TEST

START_TEST(test_list_url_encoded)
{
    /* AWS style ('+' = space) and RGW style (%20): both decode */
    static const char doc[] =
        "<ListBucketResult><EncodingType>url</EncodingType>"
        "<Contents><Key>a+b%2Bc%20d</Key><Size>1</Size></Contents>"
        "<Contents><Key>caf%C3%A9%2F%01x</Key><Size>2</Size></Contents>"
        "<CommonPrefixes><Prefix>p%2Fq/</Prefix></CommonPrefixes>"
        "<IsTruncated>false</IsTruncated></ListBucketResult>";
    struct dsq_list_page p;
    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(dsq_s3xml_parse_list(doc, strlen(doc), &p, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(p.n_entries, 2);
    ck_assert_str_eq(p.entries[0].key, "a b+c d");
    ck_assert_str_eq(p.entries[1].key, "caf\xc3\xa9/\x01x");
    ck_assert_str_eq(p.common_prefixes[0], "p/q/");
    page_free(&p);

    /* bad escapes and %00 are refused */
    static const char bad[] =
        "<ListBucketResult><EncodingType>url</EncodingType>"
        "<Contents><Key>a%00b</Key><Size>1</Size></Contents>"
        "<IsTruncated>false</IsTruncated></ListBucketResult>";
    struct dsq_err e;
    ck_assert_int_eq(dsq_s3xml_parse_list(bad, strlen(bad), &p, &e),
                     DSQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(e.msg, "escape"));
}
END_TEST

static void expect_bad_list(const char *doc, const char *needle)
{
    struct dsq_list_page p;
    struct dsq_err e;
    memset(&p, 0, sizeof(p));
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_s3xml_parse_list(doc, strlen(doc), &p, &e),
                     DSQ_ECORRUPT);
    ck_assert_msg(strstr(e.msg, needle), "message '%s' lacks '%s'", e.msg,
                  needle);
    ck_assert_ptr_null(p.entries);
}

START_TEST(test_list_malformed)
{
    expect_bad_list("<ListBucketResult><Contents><Key>a</Key>",
                    "bad XML");
    expect_bad_list("not xml at all", "bad XML");
    expect_bad_list("<HTML><BODY>hello</BODY></HTML>",
                    "not a ListObjectsV2 result");
    expect_bad_list("<Error><Code>NoSuchBucket</Code></Error>",
                    "not a ListObjectsV2 result");
    expect_bad_list("", "bad XML");
    expect_bad_list("<ListBucketResult><IsTruncated>true</IsTruncated>"
                    "</ListBucketResult>",
                    "NextContinuationToken");
    expect_bad_list("<ListBucketResult><Contents><Size>1</Size></Contents>"
                    "</ListBucketResult>",
                    "without <Key>");
    expect_bad_list("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
                    "</Contents></ListBucketResult>",
                    "Size");
    expect_bad_list("<ListBucketResult><IsTruncated>maybe</IsTruncated>"
                    "</ListBucketResult>",
                    "IsTruncated");
    /* entity expansion tricks are refused outright */
    expect_bad_list("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol "
                    "\"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>"
                    "<ListBucketResult><Contents><Key>&lol2;</Key></Contents>"
                    "</ListBucketResult>",
                    "DOCTYPE");
}
END_TEST

START_TEST(test_list_caps)
{
    /* a field over the text cap */
    size_t n = 40000;
    char *doc = malloc(n + 200);
    strcpy(doc, "<ListBucketResult><Contents><Key>");
    size_t off = strlen(doc);
    memset(doc + off, 'k', n);
    strcpy(doc + off + n, "</Key></Contents></ListBucketResult>");
    expect_bad_list(doc, "too long");
    free(doc);

    /* a document over the size cap is refused before parsing */
    struct dsq_list_page p;
    struct dsq_err e;
    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(dsq_s3xml_parse_list("x", DSQ_S3XML_MAX_DOC + 1u, &p, &e),
                     DSQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(e.msg, "cap"));

    /* deep nesting */
    struct dsq_buf b;
    dsq_buf_init(&b, 1 << 20);
    for (int i = 0; i < 200; i++)
        dsq_buf_append_str(&b, i ? "<abcdef>" : "<ListBucketResult>");
    for (int i = 0; i < 200; i++)
        dsq_buf_append_str(&b, i < 199 ? "</abcdef>" : "</ListBucketResult>");
    dsq_buf_terminate(&b);
    expect_bad_list((char *)b.data, "deeply");
    dsq_buf_cleanup(&b);
}
END_TEST

START_TEST(test_error)
{
    static const char doc[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Error><Code>NoSuchKey</Code>"
        "<Message>The resource you requested does not exist</Message>"
        "<Key>db/manifest/1</Key><Resource>/bucket/db/manifest/1</Resource>"
        "<RequestId>4442587FB7D0A2F9</RequestId><HostId>x</HostId></Error>";
    struct dsq_s3_error er;
    ck_assert_int_eq(dsq_s3xml_parse_error(doc, strlen(doc), &er, NULL),
                     DSQ_OK);
    ck_assert_str_eq(er.code, "NoSuchKey");
    ck_assert_str_eq(er.message, "The resource you requested does not exist");
    ck_assert_str_eq(er.key, "db/manifest/1");
    ck_assert_str_eq(er.request_id, "4442587FB7D0A2F9");
    ck_assert_str_eq(er.region, "");

    static const char region[] =
        "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the "
        "region 'us-east-1' is wrong;\nexpecting 'eu-west-1'</Message>"
        "<Region>eu-west-1</Region><RequestId>R</RequestId></Error>";
    ck_assert_int_eq(dsq_s3xml_parse_error(region, strlen(region), &er, NULL),
                     DSQ_OK);
    ck_assert_str_eq(er.region, "eu-west-1");
    /* one line */
    ck_assert_ptr_null(strchr(er.message, '\n'));

    /* STS style */
    static const char sts[] =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
        "<Message>bad token</Message></Error>"
        "<RequestId>abc-123</RequestId></ErrorResponse>";
    ck_assert_int_eq(dsq_s3xml_parse_error(sts, strlen(sts), &er, NULL),
                     DSQ_OK);
    ck_assert_str_eq(er.code, "InvalidIdentityToken");
    ck_assert_str_eq(er.request_id, "abc-123");

    /* no code, or not XML */
    struct dsq_err e;
    ck_assert_int_eq(dsq_s3xml_parse_error("<Error/>", 8, &er, &e),
                     DSQ_ECORRUPT);
    ck_assert_int_eq(dsq_s3xml_parse_error("<html>502</html>", 16, &er, &e),
                     DSQ_ECORRUPT);
    ck_assert_int_eq(dsq_s3xml_parse_error("Bad Gateway", 11, &er, &e),
                     DSQ_ECORRUPT);
}
END_TEST

START_TEST(test_sts)
{
    static const char doc[] =
        "<AssumeRoleWithWebIdentityResponse "
        "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult>"
        "<SubjectFromWebIdentityToken>x</SubjectFromWebIdentityToken>"
        "<Credentials><SessionToken>TOKEN/+=</SessionToken>"
        "<SecretAccessKey>SECRET+/x</SecretAccessKey>"
        "<Expiration>2014-10-24T23:00:23Z</Expiration>"
        "<AccessKeyId>ASIAEXAMPLE</AccessKeyId></Credentials>"
        "</AssumeRoleWithWebIdentityResult>"
        "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
        "</AssumeRoleWithWebIdentityResponse>";
    struct dsq_s3xml_creds c;
    ck_assert_int_eq(dsq_s3xml_parse_sts(doc, strlen(doc), &c, NULL), DSQ_OK);
    ck_assert_str_eq(c.access_key, "ASIAEXAMPLE");
    ck_assert_str_eq(c.secret_key, "SECRET+/x");
    ck_assert_str_eq(c.session_token, "TOKEN/+=");
    ck_assert_uint_eq(c.expires_ms, 1414191623000ull);
    dsq_s3xml_creds_cleanup(&c);
    ck_assert_ptr_null(c.secret_key);

    static const char partial[] =
        "<R><Credentials><AccessKeyId>A</AccessKeyId></Credentials></R>";
    struct dsq_err e;
    ck_assert_int_eq(dsq_s3xml_parse_sts(partial, strlen(partial), &c, &e),
                     DSQ_ECORRUPT);
}
END_TEST

START_TEST(test_iso8601)
{
    uint64_t ms;
    ck_assert_int_eq(dsq_parse_iso8601_ms("2014-10-24T23:00:23Z", &ms), 0);
    ck_assert_uint_eq(ms, 1414191623000ull);
    ck_assert_int_eq(dsq_parse_iso8601_ms("2014-10-24T23:00:23.5Z", &ms), 0);
    ck_assert_uint_eq(ms, 1414191623500ull);
    ck_assert_int_eq(dsq_parse_iso8601_ms("2014-10-24T23:00:23.123456Z", &ms),
                     0);
    ck_assert_uint_eq(ms, 1414191623123ull);
    ck_assert_int_eq(dsq_parse_iso8601_ms("2014-10-25T01:00:23+02:00", &ms),
                     0);
    ck_assert_uint_eq(ms, 1414191623000ull);
    ck_assert_int_eq(dsq_parse_iso8601_ms("2014-10-24 23:00:23Z", &ms), -1);
    ck_assert_int_eq(dsq_parse_iso8601_ms("2014-10-24T23:00:23", &ms), -1);
    ck_assert_int_eq(dsq_parse_iso8601_ms("2014-13-24T23:00:23Z", &ms), -1);
    ck_assert_int_eq(dsq_parse_iso8601_ms("2014-10-24T23:00:23Zx", &ms), -1);
    ck_assert_int_eq(dsq_parse_iso8601_ms("", &ms), -1);
}
END_TEST

START_TEST(test_url_decode)
{
    char *s = dsq_url_decode("a%2fb+c%7E", 10, 1);
    ck_assert_str_eq(s, "a/b c~");
    free(s);
    s = dsq_url_decode("a+b", 3, 0);
    ck_assert_str_eq(s, "a+b");
    free(s);
    ck_assert_ptr_null(dsq_url_decode("a%2", 3, 1));
    ck_assert_ptr_null(dsq_url_decode("a%zz", 4, 1));
    ck_assert_ptr_null(dsq_url_decode("a%00", 4, 1));
}
END_TEST

static Suite *s3xml_suite(void)
{
    Suite *s = suite_create("s3xml");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_list_last_page_and_empty);
    tcase_add_test(tc, test_list_url_encoded);
    tcase_add_test(tc, test_list_malformed);
    tcase_add_test(tc, test_list_caps);
    tcase_add_test(tc, test_error);
    tcase_add_test(tc, test_sts);
    tcase_add_test(tc, test_iso8601);
    tcase_add_test(tc, test_url_decode);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s3xml_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
