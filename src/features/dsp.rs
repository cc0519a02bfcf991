//! Signal processing for audio features, the same natively and in the browser: downmix,
//! band-limited resampling, and musicnn's log-mel front end.
//!
//! The front end reproduces what musicnn was trained on (librosa 0.7: `load(sr=16000)`,
//! `feature.melspectrogram(n_fft=512, hop_length=256, n_mels=96)`, a float16 cast, then
//! `log10(10000 x + 1)`): centred frames with reflect padding, a periodic Hann window, the power
//! spectrum, Slaney-style mel filters with Slaney area normalisation.

/// musicnn's sample rate, FFT size, hop and mel bands.
pub const SAMPLE_RATE: u32 = 16_000;
pub const N_FFT: usize = 512;
pub const HOP: usize = 256;
pub const N_MELS: usize = 96;

/// Averages interleaved channels to mono (librosa's `to_mono`).
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    let inv = 1.0 / channels as f32;
    interleaved
        .chunks_exact(channels)
        .map(|f| f.iter().sum::<f32>() * inv)
        .collect()
}

/// A windowed-sinc resampler with resampy's `kaiser_best` filter (64 zero crossings, 512 table
/// entries per crossing with linear interpolation, Kaiser beta 14.7697, roll-off 0.94759), the
/// resampler behind librosa 0.7's `load(sr=...)`. Output length is `floor(len * to / from)`.
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    const NUM_ZEROS: usize = 64;
    const PRECISION: usize = 9;
    const ROLLOFF: f64 = 0.947_593_716_739_959_6;
    const BETA: f64 = 14.769_656_459_379_492;
    let ratio = f64::from(to) / f64::from(from);
    let table = 1usize << PRECISION;
    let n = table * NUM_ZEROS;
    let i0_beta = bessel_i0(BETA);
    let gain = if ratio < 1.0 { ratio } else { 1.0 };
    let win: Vec<f64> = (0..=n)
        .map(|j| {
            let t = j as f64 / table as f64; // zero crossings from the centre
            let arg = ROLLOFF * t;
            let sinc = if arg == 0.0 {
                1.0
            } else {
                (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
            };
            let r = j as f64 / n as f64;
            let taper = bessel_i0(BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            ROLLOFF * sinc * taper * gain
        })
        .collect();
    let mut delta = vec![0.0; win.len()];
    for j in 0..win.len() - 1 {
        delta[j] = win[j + 1] - win[j];
    }
    let n_out = (x.len() as f64 * ratio) as usize;
    let scale = ratio.min(1.0);
    let step = 1.0 / ratio;
    let index_step = (scale * table as f64) as usize;
    let nwin = win.len();
    let mut y = vec![0f32; n_out];
    for (t, out) in y.iter_mut().enumerate() {
        let time = t as f64 * step;
        let k = time as usize;
        let mut acc = 0.0f64;
        // Left wing: x[k], x[k-1], ...
        let frac = scale * (time - k as f64);
        let index_frac = frac * table as f64;
        let offset = index_frac as usize;
        let eta = index_frac - offset as f64;
        let i_max = (k + 1).min((nwin - offset) / index_step);
        for i in 0..i_max {
            let j = offset + i * index_step;
            acc += (win[j] + eta * delta[j]) * f64::from(x[k - i]);
        }
        // Right wing: x[k+1], x[k+2], ...
        let frac = scale - frac;
        let index_frac = frac * table as f64;
        let offset = index_frac as usize;
        let eta = index_frac - offset as f64;
        let k_max = (x.len() - k - 1).min((nwin - offset) / index_step);
        for i in 0..k_max {
            let j = offset + i * index_step;
            acc += (win[j] + eta * delta[j]) * f64::from(x[k + 1 + i]);
        }
        *out = acc as f32;
    }
    y
}

/// The modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..200 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Hz to mel on the Slaney scale (linear below 1 kHz, logarithmic above), as librosa's default.
pub fn hz_to_mel(hz: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

pub fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// librosa's `filters.mel(sr, n_fft, n_mels)` (fmin 0, fmax sr/2, Slaney scale and area
/// normalisation): `n_mels` rows of `n_fft / 2 + 1` weights.
pub fn mel_filters(sr: u32, n_fft: usize, n_mels: usize) -> Vec<Vec<f32>> {
    let n_bins = n_fft / 2 + 1;
    let fmax = f64::from(sr) / 2.0;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|i| fmax * i as f64 / (n_bins - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(fmax));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    (0..n_mels)
        .map(|m| {
            let (f0, f1, f2) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
            let enorm = 2.0 / (f2 - f0);
            fft_freqs
                .iter()
                .map(|&f| {
                    let lower = (f - f0) / (f1 - f0);
                    let upper = (f2 - f) / (f2 - f1);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect()
        })
        .collect()
}

/// An in-place iterative radix-2 FFT over `(re, im)`; `re.len()` must be a power of two.
fn fft(re: &mut [f64], im: &mut [f64], twiddles: &[(f64, f64)]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let stride = n / len;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (wr, wi) = twiddles[k * stride];
                let (a, b) = (start + k, start + k + len / 2);
                let (xr, xi) = (re[b] * wr - im[b] * wi, re[b] * wi + im[b] * wr);
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
        }
        len <<= 1;
    }
}

/// musicnn's input representation of 16 kHz mono audio: `[frames][96]` log-compressed mel
/// power, `frames = 1 + len / 256`.
pub struct MelFrontEnd {
    filters: Vec<Vec<f32>>,
    /// First and one-past-last non-zero bin of each filter.
    support: Vec<(usize, usize)>,
    window: Vec<f64>,
    twiddles: Vec<(f64, f64)>,
}

impl Default for MelFrontEnd {
    fn default() -> Self {
        Self::new()
    }
}

impl MelFrontEnd {
    pub fn new() -> Self {
        let filters = mel_filters(SAMPLE_RATE, N_FFT, N_MELS);
        let support = filters
            .iter()
            .map(|w| {
                let first = w.iter().position(|&v| v != 0.0).unwrap_or(0);
                let last = w.iter().rposition(|&v| v != 0.0).map_or(0, |i| i + 1);
                (first, last.max(first))
            })
            .collect();
        // Periodic Hann (scipy's get_window('hann', N, fftbins=True)).
        let window = (0..N_FFT)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos())
            .collect();
        let twiddles = (0..N_FFT / 2)
            .map(|k| {
                let a = -2.0 * std::f64::consts::PI * k as f64 / N_FFT as f64;
                (a.cos(), a.sin())
            })
            .collect();
        MelFrontEnd {
            filters,
            support,
            window,
            twiddles,
        }
    }

    /// Mel power per frame before compression (`[frames][96]`).
    pub fn mel_power(&self, audio: &[f32]) -> Vec<[f32; N_MELS]> {
        let pad = N_FFT / 2;
        // Reflect padding (numpy's 'reflect': the edge sample is not repeated).
        let at = |i: isize| -> f32 {
            let n = audio.len() as isize;
            if n == 1 {
                return audio[0];
            }
            let mut i = i;
            let period = 2 * (n - 1);
            i = i.rem_euclid(period);
            if i >= n {
                i = period - i;
            }
            audio[i as usize]
        };
        if audio.is_empty() {
            return Vec::new();
        }
        let frames = 1 + audio.len() / HOP;
        let mut out = Vec::with_capacity(frames);
        let (mut re, mut im) = (vec![0f64; N_FFT], vec![0f64; N_FFT]);
        let mut power = vec![0f32; N_FFT / 2 + 1];
        for f in 0..frames {
            let start = (f * HOP) as isize - pad as isize;
            for i in 0..N_FFT {
                let idx = start + i as isize;
                let s = if idx >= 0 && (idx as usize) < audio.len() {
                    audio[idx as usize]
                } else {
                    at(idx)
                };
                re[i] = f64::from(s) * self.window[i];
                im[i] = 0.0;
            }
            fft(&mut re, &mut im, &self.twiddles);
            for (k, p) in power.iter_mut().enumerate() {
                // librosa keeps the STFT in complex64 and squares its magnitude in float32.
                let (r, i) = (re[k] as f32, im[k] as f32);
                *p = r * r + i * i;
            }
            let mut mel = [0f32; N_MELS];
            for (m, slot) in mel.iter_mut().enumerate() {
                let (a, b) = self.support[m];
                *slot = self.filters[m][a..b]
                    .iter()
                    .zip(&power[a..b])
                    .map(|(w, p)| w * p)
                    .sum();
            }
            out.push(mel);
        }
        out
    }

    /// The network's input: `log10(10000 * float16(mel) + 1)` per frame, flattened
    /// `[frames * 96]`. Values past float16's range are clamped to its largest finite value
    /// (librosa would give infinity, which no network output survives).
    pub fn log_mel(&self, audio: &[f32]) -> Vec<f32> {
        self.mel_power(audio)
            .into_iter()
            .flat_map(|frame| frame.into_iter().map(compress))
            .collect()
    }
}

/// `log10(10000 * float16(x) + 1)`: the mel power is rounded to float16 (as musicnn's
/// extractor stores it), the rest is computed in float32. Powers past float16's range are
/// clamped to its largest finite value.
pub fn compress(x: f32) -> f32 {
    let h = half::f16::from_f32(x.min(65504.0)).to_f32();
    (10000.0 * h + 1.0).log10()
}

/// Cuts a `[frames * 96]` representation into `[patches][n_frames * 96]` patches of
/// `n_frames` frames with `hop` frames between starts (musicnn: 187 and 187). A clip shorter
/// than one patch is repeated to fill it (the `repeat-pad` musicnn was trained with).
pub fn patches(rep: &[f32], n_frames: usize, hop: usize) -> Vec<f32> {
    let frames = rep.len() / N_MELS;
    if frames == 0 {
        return Vec::new();
    }
    if frames < n_frames {
        return (0..n_frames)
            .flat_map(|f| {
                rep[(f % frames) * N_MELS..(f % frames + 1) * N_MELS]
                    .iter()
                    .copied()
            })
            .collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start + n_frames <= frames {
        out.extend_from_slice(&rep[start * N_MELS..(start + n_frames) * N_MELS]);
        start += hop;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_matches_a_direct_dft() {
        let n = 16;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.3).collect();
        let tw: Vec<(f64, f64)> = (0..n / 2)
            .map(|k| {
                let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                (a.cos(), a.sin())
            })
            .collect();
        let (mut re, mut im) = (x.clone(), vec![0.0; n]);
        fft(&mut re, &mut im, &tw);
        for k in 0..n {
            let (mut r, mut i) = (0.0, 0.0);
            for (t, v) in x.iter().enumerate() {
                let a = -2.0 * std::f64::consts::PI * (k * t) as f64 / n as f64;
                r += v * a.cos();
                i += v * a.sin();
            }
            assert!((re[k] - r).abs() < 1e-12 && (im[k] - i).abs() < 1e-12);
        }
    }

    #[test]
    fn mel_scale_round_trips_and_filters_cover_the_spectrum() {
        for hz in [0.0, 440.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
        let f = mel_filters(16_000, 512, 96);
        assert_eq!((f.len(), f[0].len()), (96, 257));
        // Every band has weight; bands move up in frequency.
        let peaks: Vec<usize> = f
            .iter()
            .map(|w| (0..w.len()).max_by(|&a, &b| w[a].total_cmp(&w[b])).unwrap())
            .collect();
        assert!(f.iter().all(|w| w.iter().any(|&v| v > 0.0)));
        assert!(peaks.windows(2).all(|p| p[0] <= p[1]));
    }

    #[test]
    fn a_sine_lands_in_its_mel_band() {
        let sr = SAMPLE_RATE as f32;
        let audio: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / sr).sin() * 0.5)
            .collect();
        let fe = MelFrontEnd::new();
        let mel = fe.mel_power(&audio);
        assert_eq!(mel.len(), 1 + 16_000 / HOP);
        let frame = &mel[30];
        let top = (0..N_MELS)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .unwrap();
        let centre = mel_to_hz(
            hz_to_mel(0.0) + (hz_to_mel(8000.0) - hz_to_mel(0.0)) * (top + 1) as f64 / 97.0,
        );
        assert!(
            (centre - 1000.0).abs() < 60.0,
            "band {top} centred at {centre} Hz"
        );
    }

    #[test]
    fn resampling_keeps_a_tone_and_the_length_rule() {
        let (from, to) = (44_100u32, 16_000u32);
        let tone = |hz: f64, i: usize, sr: u32| {
            (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(sr)).sin()
        };
        let x: Vec<f32> = (0..44_100).map(|i| tone(440.0, i, from) as f32).collect();
        let y = resample(&x, from, to);
        assert_eq!(y.len(), 16_000);
        // Away from the edges the output is the same tone sampled at 16 kHz, to within 0.5 %:
        // resampy steps through its filter table by a whole number of entries
        // (int(512 * 16000 / 44100) = 185, not 185.76), a gain error of about 0.4 % that this
        // resampler keeps, so that its output matches the one musicnn was trained on.
        let worst = (2000..14_000)
            .map(|i| (f64::from(y[i]) - tone(440.0, i, to)).abs())
            .fold(0f64, f64::max);
        assert!(worst < 5e-3, "worst error {worst}");
        // A tone above the new Nyquist frequency is removed.
        let hiss: Vec<f32> = (0..44_100)
            .map(|i| tone(12_000.0, i, from) as f32)
            .collect();
        let y = resample(&hiss, from, to);
        let rms = (y[2000..14_000].iter().map(|v| v * v).sum::<f32>() / 12_000.0).sqrt();
        assert!(rms < 1e-3, "aliased rms {rms}");
    }

    #[test]
    fn short_clips_are_repeat_padded_and_long_ones_cut() {
        let rep: Vec<f32> = (0..10 * N_MELS).map(|i| (i / N_MELS) as f32).collect();
        let p = patches(&rep, 4, 4);
        assert_eq!(p.len(), 2 * 4 * N_MELS);
        let short = patches(&rep[..3 * N_MELS], 4, 4);
        assert_eq!(short.len(), 4 * N_MELS);
        assert_eq!(short[3 * N_MELS], 0.0); // frame 3 repeats frame 0
    }
}
