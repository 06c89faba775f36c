// GNU readline and its history library, for the interactive shell.
#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>
