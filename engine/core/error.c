#include "error.h"

#include <stdarg.h>
#include <stdio.h>

onestep_status
os_error_set(onestep_error *error, onestep_status code, const char *fmt, ...)
{
  if (error) {
    va_list ap;
    va_start(ap, fmt);
    error->code = code;
    vsnprintf(error->message, sizeof error->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

void
os_error_clear(onestep_error *error)
{
  if (error) {
    error->code = ONESTEP_OK;
    error->message[0] = '\0';
  }
}
