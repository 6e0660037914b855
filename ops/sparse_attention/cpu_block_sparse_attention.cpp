// The CPU path of the sparse attention op (fp32): loops over the kept tiles only, one task per
// (batch, head, tile) across cores. The forward keeps each row's log-sum-exp; the backward
// recomputes the probabilities from it, so nothing of size seq^2 is ever allocated. dq walks
// the row lists and dk, dv the column lists: each task writes its own rows, without atomics.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "sparse_attention/block_sparse_attention.h"

namespace deepspeed::ops::sparse_attention::attention_detail {

namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Reads the additive masks for one (batch, head).
class MaskReader {
 public:
  MaskReader(const Masks& m, int64_t b, int64_t h) {
    if (m.rpe.defined()) {
      rpe_ = m.rpe.data_ptr<float>() + b * m.rpe.stride(0) + h * m.rpe.stride(1);
      rpe_row_ = m.rpe.stride(2);
    }
    if (m.key_padding.defined()) key_padding_ = m.key_padding.data_ptr<float>() + b * m.key_padding.stride(0);
    if (m.attn.defined()) {
      attn_ = m.attn.data_ptr<float>();
      attn_row_ = m.attn.stride(0);
    }
  }
  float at(int64_t qi, int64_t kj) const {
    float x = 0.0f;
    if (rpe_) x += rpe_[qi * rpe_row_ + kj];
    if (key_padding_) x += key_padding_[kj];
    if (attn_) x += attn_[qi * attn_row_ + kj];
    return x;
  }

 private:
  const float* rpe_ = nullptr;
  int64_t rpe_row_ = 0;
  const float* key_padding_ = nullptr;
  const float* attn_ = nullptr;
  int64_t attn_row_ = 0;
};

// The shapes and pointers every loop needs.
struct View {
  int64_t batch, heads, seq, dim, tile;
  const int32_t *row_offsets, *row_indices, *col_offsets, *col_indices;

  View(const torch::Tensor& q, const TileIndex& index)
      : batch(q.size(0)), heads(q.size(1)), seq(q.size(2)), dim(q.size(3)), tile(index.tile),
        row_offsets(index.row_offsets.data_ptr<int32_t>()), row_indices(index.row_indices.data_ptr<int32_t>()),
        col_offsets(index.col_offsets.data_ptr<int32_t>()), col_indices(index.col_indices.data_ptr<int32_t>()) {}
  int64_t tiles() const { return seq / tile; }
};

// The scaled, masked score of query qi and key kj (-inf when dropped).
float score(const float* q, const float* k, int64_t qi, int64_t kj, int64_t dim, const MaskReader& mask,
            const Problem& p) {
  if (p.causal && kj > qi) return kMinusInf;
  return dot(q + qi * dim, k + kj * dim, dim) * static_cast<float>(p.scale) + mask.at(qi, kj);
}

}  // namespace

ForwardResult cpu_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const TileIndex& index, const Masks& masks, const Problem& problem) {
  const View s(q, index);
  auto out = torch::zeros_like(q);
  auto lse = torch::empty({s.batch, s.heads, s.seq}, q.options());
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  float *op = out.data_ptr<float>(), *lp = lse.data_ptr<float>();
  const int64_t tiles = s.tiles();
  at::parallel_for(0, s.batch * s.heads * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bh = task / tiles, rt = task % tiles, h = bh % s.heads;
      const MaskReader mask(masks, bh / s.heads, h);
      const int64_t off = bh * s.seq * s.dim;
      const int32_t* first = s.row_indices + s.row_offsets[h * (tiles + 1) + rt];
      const int32_t* last = s.row_indices + s.row_offsets[h * (tiles + 1) + rt + 1];
      scores.resize(static_cast<size_t>((last - first) * s.tile));
      for (int64_t qi = rt * s.tile; qi < (rt + 1) * s.tile; ++qi) {
        float mx = kMinusInf;
        size_t n = 0;
        for (const int32_t* ct = first; ct != last; ++ct) {
          for (int64_t kj = *ct * s.tile; kj < (*ct + 1) * s.tile; ++kj) {
            scores[n] = score(qp + off, kp + off, qi, kj, s.dim, mask, problem);
            mx = std::max(mx, scores[n++]);
          }
        }
        float* o = op + off + qi * s.dim;
        if (mx == kMinusInf) {  // nothing kept: zeros, and a log-sum-exp that zeroes the gradients
          lp[bh * s.seq + qi] = std::numeric_limits<float>::infinity();
          continue;
        }
        float sum = 0.0f;
        n = 0;
        for (const int32_t* ct = first; ct != last; ++ct) {
          for (int64_t kj = *ct * s.tile; kj < (*ct + 1) * s.tile; ++kj) {
            const float p = std::exp(scores[n++] - mx);
            sum += p;
            const float* vr = vp + off + kj * s.dim;
            for (int64_t d = 0; d < s.dim; ++d) o[d] += p * vr[d];
          }
        }
        for (int64_t d = 0; d < s.dim; ++d) o[d] /= sum;
        lp[bh * s.seq + qi] = mx + std::log(sum);
      }
    }
  });
  return {out, lse};
}

std::array<torch::Tensor, 3> cpu_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                          const torch::Tensor& out, const torch::Tensor& lse,
                                          const torch::Tensor& dout, const TileIndex& index, const Masks& masks,
                                          const Problem& problem) {
  const View s(q, index);
  const auto delta = (dout * out).sum(-1).contiguous();  // rowsum(dout * out) = sum_j p_ij dp_ij
  auto dq = torch::zeros_like(q), dk = torch::zeros_like(k), dv = torch::zeros_like(v);
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float *dop = dout.data_ptr<float>(), *lp = lse.data_ptr<float>(), *dp = delta.data_ptr<float>();
  float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
  const int64_t tiles = s.tiles();
  const float scale = static_cast<float>(problem.scale);

  // dS_ij = P_ij (dO_i . v_j - delta_i), P_ij = exp(S_ij - lse_i).
  auto ds_of = [&](int64_t off, int64_t row, int64_t qi, int64_t kj, const MaskReader& mask, float* p_out) {
    const float p = std::exp(score(qp + off, kp + off, qi, kj, s.dim, mask, problem) - lp[row + qi]);
    *p_out = p;
    return p * (dot(dop + off + qi * s.dim, vp + off + kj * s.dim, s.dim) - dp[row + qi]);
  };

  at::parallel_for(0, s.batch * s.heads * tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bh = task / tiles, rt = task % tiles, h = bh % s.heads;
      const MaskReader mask(masks, bh / s.heads, h);
      const int64_t off = bh * s.seq * s.dim, row = bh * s.seq;
      for (int32_t t = s.row_offsets[h * (tiles + 1) + rt]; t < s.row_offsets[h * (tiles + 1) + rt + 1]; ++t) {
        const int64_t ct = s.row_indices[t];
        for (int64_t qi = rt * s.tile; qi < (rt + 1) * s.tile; ++qi) {
          float* g = dqp + off + qi * s.dim;
          for (int64_t kj = ct * s.tile; kj < (ct + 1) * s.tile; ++kj) {
            float p;
            const float ds = ds_of(off, row, qi, kj, mask, &p) * scale;
            if (ds == 0.0f) continue;
            const float* kr = kp + off + kj * s.dim;
            for (int64_t d = 0; d < s.dim; ++d) g[d] += ds * kr[d];
          }
        }
      }
    }
  });
  at::parallel_for(0, s.batch * s.heads * tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bh = task / tiles, ct = task % tiles, h = bh % s.heads;
      const MaskReader mask(masks, bh / s.heads, h);
      const int64_t off = bh * s.seq * s.dim, row = bh * s.seq;
      for (int32_t t = s.col_offsets[h * (tiles + 1) + ct]; t < s.col_offsets[h * (tiles + 1) + ct + 1]; ++t) {
        const int64_t rt = s.col_indices[t];
        for (int64_t kj = ct * s.tile; kj < (ct + 1) * s.tile; ++kj) {
          float *gk = dkp + off + kj * s.dim, *gv = dvp + off + kj * s.dim;
          for (int64_t qi = rt * s.tile; qi < (rt + 1) * s.tile; ++qi) {
            float p;
            const float ds = ds_of(off, row, qi, kj, mask, &p) * scale;
            const float *qr = qp + off + qi * s.dim, *dor = dop + off + qi * s.dim;
            for (int64_t d = 0; d < s.dim; ++d) {
              gv[d] += p * dor[d];
              gk[d] += ds * qr[d];
            }
          }
        }
      }
    }
  });
  return {dq, dk, dv};
}

}  // namespace deepspeed::ops::sparse_attention::attention_detail
