/*
 * fuzz_awsconf.c - libFuzzer target for the shared files' parser
 * (awsconf.c) and the credential_process command-line splitter (proc.c).
 *
 * The first byte picks the dialect (bit 0: config file) and whether the
 * text is also split as a command line (bit 1); the rest is the text.
 * Anything may fail, nothing may crash or leak; every value found is a
 * non-empty one-line C string, and a split line has at least one word.
 * Seeds: tests/fuzz/corpus/fuzz_awsconf/.
 */
#include "awsconf.h"
#include "proc.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(const char *v)
{
    if (v && (!*v || strchr(v, '\n')))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    struct dsq_awsconf *a = dsq_awsconf_new();
    if (a && dsq_awsconf_parse(a, text, data[0] & 1, NULL) == DSQ_OK) {
        static const char *profiles[] = {"default", "a", "p"};
        static const char *keys[] = {
            "region",   "aws_access_key_id", "credential_process",
            "role_arn", "source_profile",    "s3.endpoint_url",
            "services"};
        for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
            for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                check_value(dsq_awsconf_get(a, profiles[i], keys[k]));
            const char *where = NULL;
            const char *ep = dsq_awsconf_endpoint(a, profiles[i], "s3", &where);
            check_value(ep);
            if (ep && !where)
                __builtin_trap();
            const char *cp =
                dsq_awsconf_get(a, profiles[i], "credential_process");
            char **argv = NULL;
            if (cp && dsq_proc_split(cp, &argv, NULL) == DSQ_OK) {
                if (!argv[0])
                    __builtin_trap();
                dsq_proc_argv_free(argv);
            }
        }
        check_value(dsq_awsconf_services_get(a, "a", "s3.endpoint_url"));
    }
    dsq_awsconf_free(a);
    if (data[0] & 2) {
        char **argv = NULL;
        if (dsq_proc_split(text, &argv, NULL) == DSQ_OK) {
            size_t n = 0;
            while (argv[n])
                n++;
            if (n == 0)
                __builtin_trap();
            dsq_proc_argv_free(argv);
        }
    }
    free(text);
    return 0;
}
