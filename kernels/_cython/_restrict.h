/* DELTAPROP_RESTRICT, the compiler's spelling of C99 ``restrict`` (a pointer whose data no other
   pointer of the function reaches), shared by the kernels' C headers. */
#ifndef DELTAPROP_RESTRICT_H
#define DELTAPROP_RESTRICT_H

#ifndef DELTAPROP_RESTRICT
#if defined(_MSC_VER)
#define DELTAPROP_RESTRICT __restrict
#else
#define DELTAPROP_RESTRICT __restrict__
#endif
#endif

#endif  /* DELTAPROP_RESTRICT_H */
