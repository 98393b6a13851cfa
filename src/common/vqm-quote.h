/* virt-qed-migrate: printable and shell-safe forms of names that come
 * from images, definitions or the command line.
 *
 * A backing name, a domain name or a path may hold any byte: printed as
 * is, a newline could fake a line of output and an escape sequence could
 * drive the terminal.  Everything such a name contributes to a message
 * goes through vqm_q() (or vqm_quote()), and every command line the tool
 * prints for copy and paste quotes its arguments with vqm_shell_quote().
 */
#ifndef VQM_QUOTE_H
#define VQM_QUOTE_H

#include <stddef.h>

/* The printable form of s: control characters (C0, DEL and the C1 range
 * U+0080..U+009F), bytes that are not part of valid UTF-8 and the
 * backslash itself are written as \n, \t, \r, \\ or \xNN; everything
 * else, printable UTF-8 included, is kept.  NULL prints as "(null)".
 * Returns a malloc'ed string, NULL when out of memory.
 */
char *vqm_quote(const char *s);

/* The same, but a backslash is kept as it is: for a whole message line
 * whose names may already be escaped, or that holds a shell-quoted
 * command; it still cannot hold a control character.  malloc'ed. */
char *vqm_quote_line(const char *s);

/* vqm_quote() in one of a small ring of buffers owned by the calling
 * thread, so that several can appear in one printf call:
 *     printf("'%s' -> '%s'\n", vqm_q(a), vqm_q(b));
 * The result stays valid until the 8th following call in the same
 * thread.  Never NULL (out of memory gives "?").
 */
const char *vqm_q(const char *s);

/* s quoted as one shell word, safe to copy and paste into bash: 'a b'
 * with ' written as '\'', or, when s holds bytes vqm_quote() escapes,
 * the $'...' form with \xNN escapes.  malloc'ed, NULL when out of
 * memory.
 */
char *vqm_shell_quote(const char *s);

/* vqm_shell_quote() in the ring of vqm_q(). */
const char *vqm_sq(const char *s);

#endif
