/* virt-qed-migrate: printable and shell-safe forms of names (see
 * vqm-quote.h).
 *
 * Invariant: the output of vqm_quote() holds only printable ASCII and
 * valid UTF-8 sequences of printable characters, so no byte of a name
 * can end a line or start a terminal control sequence.
 */
#include <config.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqm-quote.h"

/* Length of the valid, printable UTF-8 sequence at s (2 to 4 bytes), or
 * 0 when s starts no such sequence. */
static size_t
utf8_len(const unsigned char *s)
{
    unsigned cp;
    size_t n, i;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff
        || (cp >= 0x80 && cp <= 0x9f))
        return 0;
    return n;
}

/* Does s need escaping at all (a backslash only if bs)? */
static bool
plain(const char *s, bool bs)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t n;

    while (*p) {
        if (*p >= 0x20 && *p < 0x7f && (*p != '\\' || !bs)) {
            p++;
            continue;
        }
        if (*p < 0x80 || !(n = utf8_len(p)))
            return false;
        p += n;
    }
    return true;
}

/* Append the escaped form of s to fp (escaping backslashes if bs). */
static void
put_quoted(FILE *fp, const char *s, bool bs)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t n;

    while (*p) {
        if (*p >= 0x20 && *p < 0x7f && (*p != '\\' || !bs)) {
            fputc(*p++, fp);
            continue;
        }
        switch (*p) {
        case '\\': fputs("\\\\", fp); p++; continue;
        case '\n': fputs("\\n", fp); p++; continue;
        case '\t': fputs("\\t", fp); p++; continue;
        case '\r': fputs("\\r", fp); p++; continue;
        default: break;
        }
        if (*p >= 0x80 && (n = utf8_len(p))) {
            fwrite(p, 1, n, fp);
            p += n;
            continue;
        }
        fprintf(fp, "\\x%02x", *p++);
    }
}

static char *
quote(const char *s, bool bs)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp;

    if (!s)
        return strdup("(null)");
    if (plain(s, bs))
        return strdup(s);
    if (!(fp = open_memstream(&buf, &len)))
        return NULL;
    put_quoted(fp, s, bs);
    if (fclose(fp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *
vqm_quote(const char *s)
{
    return quote(s, true);
}

char *
vqm_quote_line(const char *s)
{
    return quote(s, false);
}

char *
vqm_shell_quote(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp;
    const char *p;

    if (!s)
        s = "";
    if (!(fp = open_memstream(&buf, &len)))
        return NULL;
    if (plain(s, true)) {
        /* 'it'\''s': the only byte special inside '...' is '. */
        fputc('\'', fp);
        for (p = s; *p; p++) {
            if (*p == '\'')
                fputs("'\\''", fp);
            else
                fputc(*p, fp);
        }
        fputc('\'', fp);
    } else {
        /* $'...': every byte that is not plain printable ASCII as \xNN,
         * and \ and ' escaped, so that nothing ends the word early. */
        const unsigned char *u;

        fputs("$'", fp);
        for (u = (const unsigned char *) s; *u; u++) {
            if (*u == '\\' || *u == '\'')
                fprintf(fp, "\\%c", *u);
            else if (*u >= 0x20 && *u < 0x7f)
                fputc(*u, fp);
            else
                fprintf(fp, "\\x%02x", *u);
        }
        fputc('\'', fp);
    }
    if (fclose(fp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

#define RING 8

static _Thread_local char *ring[RING];
static _Thread_local unsigned ring_next;

static const char *
ring_put(char *s)
{
    unsigned i = ring_next++ % RING;

    free(ring[i]);
    ring[i] = s;
    return s ? s : "?";
}

const char *
vqm_q(const char *s)
{
    return ring_put(vqm_quote(s));
}

const char *
vqm_sq(const char *s)
{
    return ring_put(vqm_shell_quote(s));
}
