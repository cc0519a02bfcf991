//! The MGPHot schema (Oramas et al., TISMIR 2025): 58 musicological "genes" per song in eight
//! categories, each rated 0-5 by the tagger (stored divided by 5, in [0, 1]) with a one-line
//! anchor saying what 0 and 5 mean. Readable tags: Low (0, 0.33), Moderate [0.33, 0.66),
//! High >= 0.66, none at 0; tonality reads Minor / Ambiguous Key Mode / Major.

/// A gene: its position in the 58-vector, category, name, JSON key and anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gene {
    pub index: usize,
    pub category: &'static str,
    pub name: &'static str,
    /// snake_case key the model answers with.
    pub key: &'static str,
    /// What 0 and 5 mean.
    pub anchor: &'static str,
}

macro_rules! genes {
    ($( $cat:literal : [ $( ($name:literal, $key:literal, $anchor:literal) ),* $(,)? ] ),* $(,)?) => {
        &[ $( $( ($cat, $name, $key, $anchor), )* )* ]
    };
}

const TABLE: &[(&str, &str, &str, &str)] = genes![
    "vocals": [
        ("Vocal Register", "vocal_register", "0 = very low (bass), 5 = very high (soprano/falsetto)"),
        ("Vocal Timbre Thin to Full", "vocal_timbre", "0 = thin, 5 = full and rich"),
        ("Vocal Breathiness", "vocal_breathiness", "0 = no breath in the voice, 5 = very breathy"),
        ("Vocal Smoothness", "vocal_smoothness", "0 = rough, 5 = very smooth"),
        ("Vocal Grittiness", "vocal_grittiness", "0 = clean, 5 = very gritty or raspy"),
        ("Vocal Nasality", "vocal_nasality", "0 = not nasal, 5 = very nasal"),
        ("Vocal Accompaniment", "vocal_accompaniment", "0 = no backing vocals, 5 = prominent backing vocals or choir"),
    ],
    "harmony": [
        ("Minor/Major Key Tonality", "tonality", "0 = clearly minor, 5 = clearly major"),
        ("Harmonic Sophistication", "harmonic_sophistication", "0 = two or three simple chords, 5 = rich extended harmony"),
    ],
    "rhythm": [
        ("Tempo", "tempo", "0 = very slow, 5 = very fast"),
        ("Cut Time Feel", "cut_time_feel", "0 = none, 5 = strong cut-time (2/2) feel"),
        ("Triple Meter", "triple_meter", "0 = none, 5 = clearly in 3/4"),
        ("Compound Meter", "compound_meter", "0 = none, 5 = clearly compound (6/8, 12/8)"),
        ("Odd Meter", "odd_meter", "0 = none, 5 = clearly odd meter (5/4, 7/8)"),
        ("Swing Feel", "swing_feel", "0 = straight, 5 = strong swing"),
        ("Shuffle Feel", "shuffle_feel", "0 = none, 5 = strong shuffle"),
        ("Syncopation Low to High", "syncopation", "0 = on the beat, 5 = highly syncopated"),
        ("Backbeat", "backbeat", "0 = no backbeat, 5 = strong backbeat on 2 and 4"),
        ("Danceability", "danceability", "0 = not danceable, 5 = made for dancing"),
    ],
    "instrumentation": [
        ("Drum Set", "drum_set", "0 = no drum set, 5 = drum set is the dominant element"),
        ("Drum Aggressiveness", "drum_aggressiveness", "0 = gentle or no drums, 5 = very aggressive drumming"),
        ("Synthetic Drums", "synthetic_drums", "0 = no drum machines, 5 = only programmed drums"),
        ("Percussion", "percussion", "0 = no extra percussion, 5 = percussion is central"),
        ("Electric Guitar", "electric_guitar", "0 = none, 5 = electric guitar dominates"),
        ("Electric Guitar Distortion", "guitar_distortion", "0 = clean or none, 5 = heavily distorted"),
        ("Acoustic Guitar", "acoustic_guitar", "0 = none, 5 = acoustic guitar dominates"),
        ("String Ensemble", "string_ensemble", "0 = none, 5 = strings are central"),
        ("Horn Ensemble", "horn_ensemble", "0 = none, 5 = horns are central"),
        ("Piano", "piano", "0 = none, 5 = piano dominates"),
        ("Organ", "organ", "0 = none, 5 = organ dominates"),
        ("Rhodes", "rhodes", "0 = none, 5 = electric piano dominates"),
        ("Synthesizer", "synthesizer", "0 = none, 5 = synthesizers dominate"),
        ("Synth Timbre", "synth_timbre", "0 = warm and analog, 5 = bright and digital"),
        ("Bass Guitar", "bass_guitar", "0 = none, 5 = bass guitar is prominent"),
        ("Reed Instrument", "reed_instrument", "0 = none, 5 = saxophone, clarinet or harmonica is central"),
    ],
    "lyrics": [
        ("Angry Lyrics", "angry_lyrics", "0 = not angry, 5 = very angry"),
        ("Sad Lyrics", "sad_lyrics", "0 = not sad, 5 = very sad"),
        ("Happy/Joyful Lyrics", "happy_lyrics", "0 = not happy, 5 = very joyful"),
        ("Humorous Lyrics", "humorous_lyrics", "0 = serious, 5 = very humorous"),
        ("Love/Romance Lyrics", "love_lyrics", "0 = not about love, 5 = all about love"),
        ("Social/Political Lyrics", "political_lyrics", "0 = none, 5 = strongly social or political"),
        ("Abstract Lyrics", "abstract_lyrics", "0 = literal, 5 = very abstract"),
        ("Explicit Lyrics", "explicit_lyrics", "0 = clean, 5 = very explicit"),
    ],
    "sonority": [
        ("Live Recording", "live_recording", "0 = studio, 5 = clearly live"),
        ("Audio Production", "audio_production", "0 = raw, lo-fi, 5 = polished, heavily produced"),
        ("Aural Intensity", "aural_intensity", "0 = soft and calm, 5 = loud and intense"),
        ("Acoustic Sonority", "acoustic_sonority", "0 = none, 5 = entirely acoustic instruments"),
        ("Electric Sonority", "electric_sonority", "0 = none, 5 = entirely electric instruments"),
        ("Synthetic Sonority", "synthetic_sonority", "0 = none, 5 = entirely synthetic sounds"),
    ],
    "composition": [
        ("Focus on Lead Vocal", "focus_lead_vocal", "0 = no lead vocal, 5 = the lead vocal is the focus"),
        ("Focus on Lyrics", "focus_lyrics", "0 = lyrics unimportant, 5 = the lyrics are the focus"),
        ("Focus on Melody", "focus_melody", "0 = little melody, 5 = the melody is the focus"),
        ("Focus on Vocal Accompaniment", "focus_vocal_accompaniment", "0 = none, 5 = backing vocals are a focus"),
        ("Focus on Rhythmic Groove", "focus_groove", "0 = little groove, 5 = the groove is the focus"),
        ("Focus on Musical Arrangements", "focus_arrangement", "0 = simple, 5 = the arrangement is the focus"),
        ("Focus on Form", "focus_form", "0 = simple form, 5 = the structure is the focus"),
        ("Focus on Riffs", "focus_riffs", "0 = no riffs, 5 = built around riffs"),
        ("Focus on Performance", "focus_performance", "0 = plain, 5 = virtuosic performance is the focus"),
    ],
];

/// The 58 genes, in MGPHot's order.
pub fn genes() -> Vec<Gene> {
    TABLE
        .iter()
        .enumerate()
        .map(|(index, &(category, name, key, anchor))| Gene {
            index,
            category,
            name,
            key,
            anchor,
        })
        .collect()
}

/// The categories, in order.
pub const CATEGORIES: [&str; 7] = [
    "vocals",
    "harmony",
    "rhythm",
    "instrumentation",
    "lyrics",
    "sonority",
    "composition",
];

/// Index of the tonality gene (read Minor / Ambiguous / Major).
pub const TONALITY: usize = 7;

/// The readable tag of a gene value in [0, 1] (`None` at 0).
pub fn tag(gene: &Gene, value: f32) -> Option<String> {
    if gene.index == TONALITY {
        return Some(
            if value < 0.33 {
                "Minor"
            } else if value < 0.66 {
                "Ambiguous Key Mode"
            } else {
                "Major"
            }
            .to_string(),
        );
    }
    if value <= 0.0 {
        return None;
    }
    let level = if value < 0.33 {
        "Low"
    } else if value < 0.66 {
        "Moderate"
    } else {
        "High"
    };
    Some(format!("{} {level}", gene.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_eight_genes_in_order_with_unique_keys() {
        let g = genes();
        assert_eq!(g.len(), crate::features::tags::MGPHOT_DIM);
        assert_eq!(g[0].name, "Vocal Register");
        assert_eq!(g[7].key, "tonality");
        assert_eq!(g[19].name, "Drum Set");
        assert_eq!(g[34].name, "Reed Instrument");
        assert_eq!(g[42].name, "Explicit Lyrics");
        assert_eq!(g[57].name, "Focus on Performance");
        let keys: std::collections::BTreeSet<&str> = g.iter().map(|g| g.key).collect();
        assert_eq!(keys.len(), 58);
        for gene in &g {
            assert!(CATEGORIES.contains(&gene.category));
            assert!(gene.anchor.starts_with("0 = ") && gene.anchor.contains(", 5 = "));
        }
    }

    #[test]
    fn readable_tags() {
        let g = genes();
        assert_eq!(tag(&g[19], 0.0), None);
        assert_eq!(tag(&g[19], 0.2).unwrap(), "Drum Set Low");
        assert_eq!(tag(&g[19], 0.4).unwrap(), "Drum Set Moderate");
        assert_eq!(tag(&g[19], 1.0).unwrap(), "Drum Set High");
        assert_eq!(tag(&g[TONALITY], 0.0).unwrap(), "Minor");
        assert_eq!(tag(&g[TONALITY], 0.6).unwrap(), "Ambiguous Key Mode");
        assert_eq!(tag(&g[TONALITY], 0.8).unwrap(), "Major");
    }
}
