/* Philox4x32-10 against Random123's known-answer vectors, normal statistics,
 * and independence of the result from how a range is split. */
#include <math.h>

#include "loader_test.h"
#include "philox.h"

static void
test_known_answers(void)
{
  /* Random123 kat_vectors: counter, key, expected output */
  static const struct {
    uint32_t ctr[4], key[2], expected[4];
  } cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    uint32_t out[4];
    os_philox4x32_10(cases[c].ctr, cases[c].key, out);
    for (int i = 0; i < 4; i++)
      CHECK(out[i] == cases[c].expected[i]);
  }
}

static void
test_statistics(void)
{
  enum { N = 1000000 };
  float *z = malloc(N * sizeof *z);
  os_philox_normal(1234, OS_NOISE_LATENTS, 0, z, N);
  double sum = 0, sum_sq = 0;
  int beyond_3sigma = 0;
  for (int i = 0; i < N; i++) {
    CHECK(isfinite(z[i]));
    sum += z[i];
    sum_sq += (double)z[i] * z[i];
    beyond_3sigma += fabsf(z[i]) > 3.0f;
  }
  double mean = sum / N, variance = sum_sq / N - mean * mean;
  /* 5 standard errors: a correct generator fails this about once in 10^6 runs */
  CHECK(fabs(mean) < 5.0 / sqrt(N));
  CHECK(fabs(variance - 1.0) < 5.0 * sqrt(2.0 / N));
  /* two-sided tail beyond 3 sigma is 0.27% */
  CHECK(beyond_3sigma > 2300 && beyond_3sigma < 3100);
  free(z);
}

static void
test_split_invariance_and_streams(void)
{
  float whole[1000], parts[1000], other_stream[1000], other_seed[1000];
  os_philox_normal(42, OS_NOISE_IMAGE_AUG, 0, whole, 1000);
  os_philox_normal(42, OS_NOISE_IMAGE_AUG, 0, parts, 500);
  os_philox_normal(42, OS_NOISE_IMAGE_AUG, 500, parts + 500, 500);
  CHECK(memcmp(whole, parts, sizeof whole) == 0);

  /* splits that cut through blocks and Box-Muller pairs */
  os_philox_normal(42, OS_NOISE_IMAGE_AUG, 0, parts, 3);
  os_philox_normal(42, OS_NOISE_IMAGE_AUG, 3, parts + 3, 2);
  os_philox_normal(42, OS_NOISE_IMAGE_AUG, 5, parts + 5, 994);
  os_philox_normal(42, OS_NOISE_IMAGE_AUG, 999, parts + 999, 1);
  CHECK(memcmp(whole, parts, sizeof whole) == 0);

  os_philox_normal(42, OS_NOISE_LATENTS, 0, other_stream, 1000);
  os_philox_normal(43, OS_NOISE_IMAGE_AUG, 0, other_seed, 1000);
  int same_stream = 0, same_seed = 0;
  for (int i = 0; i < 1000; i++) {
    same_stream += whole[i] == other_stream[i];
    same_seed += whole[i] == other_seed[i];
  }
  CHECK(same_stream < 5 && same_seed < 5);

  /* the high halves of seed and offset matter too */
  float high_a, high_b;
  os_philox_normal(UINT64_C(1) << 40, 0, UINT64_C(1) << 36, &high_a, 1);
  os_philox_normal(0, 0, 0, &high_b, 1);
  CHECK(high_a != high_b);
}

int
main(void)
{
  test_known_answers();
  test_statistics();
  test_split_invariance_and_streams();
  return test_summary("philox");
}
