/* error.h: filling onestep_error with formatted messages. */
#ifndef ONESTEP_ERROR_H
#define ONESTEP_ERROR_H

#include "onestep.h"

#if defined(__GNUC__)
#define OS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define OS_PRINTF(a, b)
#endif

/* Sets code and message (error may be NULL); returns code for `return os_error_set(...)`. */
onestep_status os_error_set(onestep_error *error, onestep_status code, const char *fmt, ...)
    OS_PRINTF(3, 4);
void os_error_clear(onestep_error *error);

#endif
